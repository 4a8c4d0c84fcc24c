"""MIDI files <-> :class:`Score`. symusic reads (fast), mido writes (simple, exact ticks)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import TunesmithError
from ..files import atomic_path, printable
from .notes import Score

TPQ = 480  # ticks per quarter note in files we write
TEMPO_RANGE = (4.0, 1000.0)  # quarter notes per minute we write (MIDI itself holds 3.58 .. 60,000,000)
END_MARKER = "end"  # a marker at a Score's explicit end (trailing rests), which end_of_track alone does not keep


def read_midi(path: str | os.PathLike) -> Score:
    """Read a MIDI file. Raises TunesmithError (one line) for a missing, empty or corrupt file."""
    import symusic

    path = Path(path)
    if not path.is_file():
        raise TunesmithError(f"MIDI file not found: {path}")
    if path.stat().st_size == 0:
        raise TunesmithError(f"{path} is empty (0 bytes): it is not a MIDI file")
    try:
        sm = symusic.Score.from_file(str(path), ttype="quarter")
    except Exception as e:  # symusic raises RuntimeError with a C++ message
        raise TunesmithError(f"{path} is not a readable MIDI file ({str(e).splitlines()[0][:80]})") from None
    pitch, start, dur, vel, track = [], [], [], [], []
    programs, drums = {}, []
    for ti, tr in enumerate(sm.tracks):
        arr = tr.notes.numpy()
        if len(arr["pitch"]) == 0:
            continue
        pitch.append(arr["pitch"].astype(np.int16))
        start.append(arr["time"].astype(np.float64))
        dur.append(arr["duration"].astype(np.float64))
        vel.append(arr["velocity"].astype(np.int16))
        track.append(np.full(len(arr["pitch"]), len(programs), np.int16))
        if tr.is_drum:
            drums.append(len(programs))
        programs[len(programs)] = int(tr.program)
    ends = [float(m.time) for m in sm.markers if m.text == END_MARKER]
    tempo = float(sm.tempos[0].qpm) if len(sm.tempos) else 120.0
    ts = (int(sm.time_signatures[0].numerator), int(sm.time_signatures[0].denominator)) \
        if len(sm.time_signatures) else (4, 4)
    cat = (lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt))
    score = Score(cat(pitch, np.int16), cat(start, np.float64), cat(dur, np.float64), cat(vel, np.int16),
                  cat(track, np.int16), tempo=tempo, time_signature=ts, title=printable(path.stem),
                  programs=programs, drum_tracks=tuple(drums))
    if ends and ends[-1] > score.notes_end:
        score.end = ends[-1]      # the trailing rests of a phrase written by write_midi
    return score.sorted()


def write_midi(score: Score, path: str | os.PathLike, tempo: float | None = None,
               program: int | None = None) -> Path:
    """Write a Score as a type-1 MIDI file (one MIDI track per Score track), atomically."""
    import mido

    path = Path(path)
    tempo = float(tempo if tempo is not None else (score.tempo or 120.0))
    if not (np.isfinite(tempo) and tempo > 0 and 1 <= round(6e7 / tempo) <= 0xFFFFFF):  # 0 or 1e12: no tempo
        raise TunesmithError(f"tempo must be between {TEMPO_RANGE[0]:g} and {TEMPO_RANGE[1]:g} quarter notes "
                             f"per minute, got {tempo:g}")
    mid = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0))
    num, den = score.time_signature
    meta.append(mido.MetaMessage("time_signature", numerator=int(num), denominator=int(den), time=0))
    if score.title:  # MIDI text is latin-1: replace what it cannot hold (e.g. typographic quotes)
        name = score.title[:60].encode("latin-1", "replace").decode("latin-1")
        meta.append(mido.MetaMessage("track_name", name=name, time=0))
    if score.end is not None and score.end > score.notes_end:   # trailing rests: a marker (what read_midi reads
        tick = int(round(score.end * TPQ))                       # back) and the track's end (what others read)
        meta.append(mido.MetaMessage("marker", text=END_MARKER, time=tick))
        meta.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(meta)
    tracks = sorted(set(score.track.tolist())) or [0]
    for ch_index, t in enumerate(tracks):
        sel = score.track == t
        is_drum = t in score.drum_tracks
        channel = 9 if is_drum else (ch_index if ch_index < 9 else ch_index + 1) % 16
        prog = program if program is not None else score.programs.get(t, 0)
        events = []  # (tick, order, message) -- note_off (order 0) before note_on (order 1) at equal ticks
        for p, s, d, v in zip(score.pitch[sel], score.start[sel], score.duration[sel], score.velocity[sel]):
            on = int(round(s * TPQ))
            off = max(on + 1, int(round((s + d) * TPQ)))
            p = int(np.clip(p, 0, 127))
            events.append((on, 1, mido.Message("note_on", note=p, velocity=int(np.clip(v, 1, 127)), channel=channel)))
            events.append((off, 0, mido.Message("note_off", note=p, velocity=0, channel=channel)))
        events.sort(key=lambda e: (e[0], e[1]))
        tr = mido.MidiTrack()
        if not is_drum:
            tr.append(mido.Message("program_change", program=int(prog) % 128, channel=channel, time=0))
        last = 0
        for tick, _, msg in events:
            tr.append(msg.copy(time=tick - last))
            last = tick
        mid.tracks.append(tr)
    with atomic_path(path) as tmp:
        mid.save(str(tmp))
    return path
