"""The time-step encoding and MIDI I/O round trips."""
import numpy as np
import pretty_midi
import pytest

from tunesmith.data.corpora import load_corpus
from tunesmith.data.midi import read_midi, write_midi
from tunesmith.data.notes import Score, estimate_key, transposition_to_c_or_a
from tunesmith.data.timestep import (TimeStepCodec, check_durations, decode_tokens, encode_score)
from tunesmith.errors import TunesmithError

SONG = Score.from_notes([(67, 0, 1.0), (67, 1, 0.5), (69, 1.5, 0.5), (67, 2.5, 1.5), (72, 4, 0.25)])


def test_encode_hand_written_song():
    # G quarter, G eighth, A eighth, eighth rest, G dotted quarter, C sixteenth
    assert encode_score(SONG) == ["67", "_", "_", "_", "67", "_", "69", "_", "r", "_",
                                  "67", "_", "_", "_", "_", "_", "72"]


def test_decode_inverts_encode():
    assert decode_tokens(encode_score(SONG)).notes() == SONG.notes()


def test_decode_stops_at_delimiter_and_reads_leading_hold_as_rest():
    s = decode_tokens(["_", "60", "_", "/", "62"])
    assert s.notes() == [(60, 0.25, 0.5)]


def test_round_trip_through_midi_for_real_songs(tmp_path):
    songs = [s for s in load_corpus("essen-small") if check_durations(s) is None][:10]
    assert len(songs) >= 5
    for i, song in enumerate(songs):
        song = song.transpose(transposition_to_c_or_a(song.estimate_key()))
        decoded = decode_tokens(encode_score(song))
        path = write_midi(decoded, tmp_path / f"s{i}.mid", tempo=100)
        back = read_midi(path)
        assert back.notes() == song.monophonic().notes()
        # a second library reads the same notes (seconds at 100 bpm = beats * 0.6)
        pm = pretty_midi.PrettyMIDI(str(path))
        got = [(n.pitch, round(n.start / 0.6, 4), round((n.end - n.start) / 0.6, 4)) for n in pm.instruments[0].notes]
        assert got == [(p, round(a, 4), round(d, 4)) for p, a, d in song.monophonic().notes()]


def test_transposition_to_c_major_and_a_minor():
    assert transposition_to_c_or_a((7, "major")) == -7   # G4 -> C4, as music21's interval
    assert transposition_to_c_or_a((4, "minor")) == 5    # E4 -> A4
    g_major_scale = Score.from_notes([(p, i, 1) for i, p in enumerate([67, 69, 71, 72, 74, 76, 78, 79, 74, 71, 67])])
    assert estimate_key(g_major_scale.pitch_class_histogram()) == (7, "major")


def test_duration_filter_reasons():
    assert check_durations(SONG) is None
    assert "2.5" in check_durations(Score.from_notes([(60, 0, 2.5)]))
    assert check_durations(Score()) == "no notes"


def test_codec_state_and_unknown_primer():
    codec = TimeStepCodec.from_corpus([encode_score(SONG)], 0.25, 16)
    again = TimeStepCodec.from_state(codec.state())
    assert again.vocab == codec.vocab == ["/", "_", "r", "67", "69", "72"]
    assert again.parse_primer("67 _ 69") == [3, 1, 4]
    with pytest.raises(TunesmithError, match="'61' is not in the vocabulary"):
        again.parse_primer("61 _")


def test_monophonic_keeps_top_voice():
    chord = Score.from_notes([(60, 0, 2), (64, 0, 2), (67, 1, 1)])
    assert chord.monophonic().notes() == [(64, 0.0, 1.0), (67, 1.0, 1.0)]


def test_bad_midi_files(tmp_path):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    with pytest.raises(TunesmithError, match="empty"):
        read_midi(empty)
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage-garbage")
    with pytest.raises(TunesmithError, match="not a readable MIDI file"):
        read_midi(bad)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(TunesmithError, match="no music files"):
        load_corpus(str(tmp_path))


def test_folder_goes_through_the_same_path(tmp_path):
    """data.source = "path/to/folder": the user's own files, same filter and encoding."""
    from tunesmith.data.base import build_data

    folder = tmp_path / "mine"
    rng = np.random.default_rng(0)
    for i in range(6):
        notes = [(int(p), j * 0.5, 0.5) for j, p in enumerate(rng.choice([60, 62, 64, 65, 67], 40))]
        write_midi(Score.from_notes(notes), folder / f"t{i}.mid")
    (folder / "broken.mid").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        b = build_data("timestep", source=str(folder), seq_len=16, val_fraction=0.2, transpose=False)
    assert b.stats["kept"] == 6 and b.stats["val_songs"] == 1
    assert set(b.codec.vocab) <= {"/", "_", "r", "60", "62", "64", "65", "67"}


def test_titles_outside_latin1_are_written(tmp_path):
    s = Score.from_notes([(60, 0, 1)], title="Christ lag in Todes\u2019 Banden \u266b")
    back = read_midi(write_midi(s, tmp_path / "t.mid"))
    assert back.notes() == [(60, 0.0, 1.0)]


def test_trailing_rests_survive_a_midi_round_trip(tmp_path):
    # a 4-bar phrase whose last bar is silent: the file keeps its end (a marker read back, and the track's end,
    # which mido reads as the file's length); before, it ended with the last note and the evaluation's empty-bar
    # and empty-beat rates of written phrases differed from the in-memory ones
    import mido

    s = Score.from_notes([(60, 0, 4.0), (62, 4.0, 8.0)])
    s.end = 16.0
    back = read_midi(write_midi(s, tmp_path / "p.mid"))
    assert back.end == 16.0 and back.notes() == s.notes()
    assert mido.MidiFile(str(tmp_path / "p.mid")).length == pytest.approx(8.0)   # 16 beats at 120 per minute
    plain = read_midi(write_midi(Score.from_notes([(60, 0, 1.0)]), tmp_path / "q.mid"))
    assert plain.end is None                                                    # no explicit end: none comes back
