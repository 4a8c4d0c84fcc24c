"""Metrics a paper can cite (issue 11, item 6): mgeval's pitch-class transition definition, worked out by
hand and checked against pretty_midi's own implementation; report.html's colouring and Markdown."""
import re

import numpy as np
import pytest

from tunesmith.data.notes import Score
from tunesmith.evaluation import features as F


def counts(score: Score, consecutive=False) -> np.ndarray:
    b = F.NoteBatch.from_scores([score])
    return (F.pitch_class_transitions_consecutive(b) if consecutive else F.pitch_class_transitions(b))[0]


def pairs(m: np.ndarray) -> dict:
    return {(int(i), int(j)): int(m[i, j]) for i, j in zip(*np.nonzero(m))}


def test_a_rest_ends_a_transition_in_mgevals_definition_not_in_ours():
    # 120 bpm (a beat is 0.5 s): C D E F, a one-beat rest, C
    s = Score.from_notes([(60, 0, 1), (62, 1, 1), (64, 2, 0.5), (65, 2.5, 0.5), (60, 4, 2)])
    assert pairs(counts(s)) == {(0, 2): 1, (2, 4): 1, (4, 5): 1}
    assert pairs(counts(s, consecutive=True)) == {(0, 2): 1, (2, 4): 1, (4, 5): 1, (5, 0): 1}


def test_every_pair_of_two_chords_counts():
    # C major [0, 1) then D minor [1, 2): 3 x 3 = 9 transitions; no pair inside a chord (no note ends there)
    s = Score.from_notes([(60, 0, 1), (64, 0, 1), (67, 0, 1), (62, 1, 1), (65, 1, 1), (69, 1, 1)])
    assert pairs(counts(s)) == {(a, b): 1 for a in (0, 4, 7) for b in (2, 5, 9)}
    # ours: consecutive notes in onset order, highest pitch first: G E C | A F D -> 5 pairs
    assert pairs(counts(s, consecutive=True)) == {(7, 4): 1, (4, 0): 1, (0, 9): 1, (9, 5): 1, (5, 2): 1}


def test_the_50_ms_window_in_seconds_at_the_pieces_tempo():
    # 120 bpm: 0.1 beat = 50 ms. C ends at 1; D starts 0.08 beat (40 ms) later: counted.
    # D ends at 2.08; E starts 0.12 beat (60 ms) later: not counted. F starts 0.08 beat before E ends
    # (legato overlap, |end - start| = 40 ms): counted.
    notes = [(60, 0, 1), (62, 1.08, 1), (64, 2.2, 1), (65, 3.12, 1)]
    assert pairs(counts(Score.from_notes(notes, tempo=120.0))) == {(0, 2): 1, (4, 5): 1}
    # at 60 bpm the same beats are twice as long: 80 ms is outside the window
    assert pairs(counts(Score.from_notes(notes, tempo=60.0))) == {}
    # at 240 bpm 60 ms becomes 30 ms: all three count
    assert pairs(counts(Score.from_notes(notes, tempo=240.0))) == {(0, 2): 1, (2, 4): 1, (4, 5): 1}


def test_transitions_stay_inside_a_track():
    # pretty_midi works per instrument: track 0's note ends where track 1's starts, no transition
    s = Score.from_notes([(60, 0, 1, 90, 0), (67, 1, 1, 90, 1), (62, 1, 1, 90, 0)])
    assert pairs(counts(s)) == {(0, 2): 1}


def test_batch_of_pieces_gives_each_its_own_matrix():
    a = Score.from_notes([(60, 0, 1), (62, 1, 1)])
    b = Score.from_notes([(64, 0, 1), (65, 1, 1), (67, 2, 1)], tempo=90.0)
    m = F.pitch_class_transitions(F.NoteBatch.from_scores([a, b]))
    assert pairs(m[0]) == {(0, 2): 1} and pairs(m[1]) == {(4, 5): 1, (5, 7): 1}


def test_matches_pretty_midis_own_implementation():
    """mgeval calls pretty_midi's get_pitch_class_transition_matrix: given the same notes (in seconds), ours
    must agree, on random pieces with chords, rests, overlaps and two tracks (on an eighth-of-a-beat grid, so
    no pair sits on the 50 ms edge)."""
    import pretty_midi

    rng = np.random.default_rng(0)
    for k in range(20):
        n = int(rng.integers(2, 40))
        tempo = float(rng.choice([60, 90, 100, 120]))  # 1/8 beat >= 62.5 ms
        notes = [(int(rng.integers(48, 84)), float(rng.integers(0, 64)) / 8, float(rng.integers(1, 12)) / 8,
                  80, int(rng.integers(0, 2))) for _ in range(n)]
        pm = pretty_midi.PrettyMIDI()
        for t in (0, 1):
            inst = pretty_midi.Instrument(0)
            spb = 60.0 / tempo
            inst.notes = [pretty_midi.Note(v, p, s * spb, (s + d) * spb) for p, s, d, v, tr in notes if tr == t]
            pm.instruments.append(inst)
        expected = pm.get_pitch_class_transition_matrix()
        got = counts(Score.from_notes(notes, tempo=tempo))
        assert np.array_equal(got, expected), (k, pairs(got), pairs(expected))


def test_the_mgeval_table_uses_mgevals_definition_and_lists_ours_by_name(tmp_path):
    s = Score.from_notes([(60, 0, 1), (62, 1, 1), (64, 3, 1)])  # a rest before E
    f = F.piece_features(s)
    assert pairs(f["pitch_class_transition_counts"]) == {(0, 2): 1}
    assert f["pitch_class_transitions"][0, 2] == 1.0
    assert f["pitch_class_transitions_consecutive"][0, 2] == pytest.approx(0.5)
    assert f["pitch_class_transitions_consecutive"][2, 4] == pytest.approx(0.5)
    assert "mgeval" in F.VECTOR_FEATURES["pitch_class_transitions"]
    assert "pitch_class_transitions_consecutive" in F.VECTOR_FEATURES


# ------------------------------------------------------------------------------------------ report.html
@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from tunesmith.evaluation.report import evaluate

    rng = np.random.default_rng(1)
    mk = lambda lo, hi: [Score.from_notes([(int(p), i, 1) for i, p in enumerate(rng.integers(lo, hi, 16))])  # noqa: E731
                         for _ in range(8)]
    out = tmp_path_factory.mktemp("rep")
    metrics = evaluate(mk(60, 72), mk(60, 72), out)
    return out, metrics


def test_report_html_colours_good_and_bad_cells(report):
    out, metrics = report
    page = (out / "report.html").read_text()
    assert not re.search(r"<td[^>]*class=[^>]*class=", page)  # one class attribute per cell
    cells = re.findall(r"<tr><td>([a-z_]+)</td>((?:<td[^>]*>[^<]*</td>)+)", page)
    assert cells
    for name, row in cells:
        oa = metrics["features"][name]["overlap_ref_intra_vs_inter"]
        third = re.findall(r"<td([^>]*)>", row)[2]
        want = "n good" if oa >= 0.8 else "n bad" if oa < 0.5 else "n"
        assert third == f" class='{want}'", (name, oa, third)
    assert ".good{" in page and ".bad{" in page


def test_report_html_renders_markdown_instead_of_showing_asterisks(report):
    out, _ = report
    page = (out / "report.html").read_text()
    text = re.sub(r"<img[^>]*>", "", page)
    assert "*" not in re.sub(r"<style>.*?</style>", "", text, flags=re.S)
    assert "<em>overlap</em>" in page
    md = (out / "report.md").read_text()
    assert "*overlap*" in md  # the Markdown keeps its own syntax
