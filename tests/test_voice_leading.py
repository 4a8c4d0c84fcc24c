"""Voice-leading metrics (evaluation/voice_leading.py) on hand-built pieces with hand-computed values."""
import math

import numpy as np
import pytest

from tunesmith.data.notes import Score
from tunesmith.evaluation import voice_leading as VL


def piece(*voices, step=1.0):
    """Each voice a list of pitches, one per ``step`` beats (None = rest); voice i -> track i."""
    notes = [(p, i * step, step, 90, v) for v, line in enumerate(voices) for i, p in enumerate(line) if p is not None]
    return Score.from_notes(notes)


def test_parallel_fifths_and_octaves_counted_only_in_similar_motion():
    assert VL.parallels(piece([72, 74], [65, 67])) == {"fifths": 1, "octaves": 0, "steps": 1}
    assert VL.parallels(piece([72, 74], [60, 62])) == {"fifths": 0, "octaves": 1, "steps": 1}
    assert VL.parallels(piece([72, 74], [65, 55])) == {"fifths": 0, "octaves": 0, "steps": 1}  # contrary fifths
    assert VL.parallels(piece([72, 72], [65, 67])) == {"fifths": 0, "octaves": 0, "steps": 1}  # oblique
    # four chords, three voice-leading steps, one parallel fifth (the last)
    p = piece([72, 71, 72, 74], [64, 67, 65, 67])
    assert VL.parallels(p) == {"fifths": 1, "octaves": 0, "steps": 3}
    assert VL.parallels_per_100(p) == pytest.approx(100 / 3)


def test_held_notes_are_not_voice_leading_steps():
    # a two-beat chord written on a 16th grid is one chord, not eight
    p = piece([72, 74], [65, 67], step=2.0)
    assert VL.parallels(p)["steps"] == 1


def test_voice_crossings_and_overlaps():
    assert VL.voice_crossings(piece([72, 60, 72, 60], [65, 65, 65, 65])) == pytest.approx(0.5)
    assert VL.voice_crossings(piece([72, 72], [65, None])) == 0.0
    s = Score.from_notes([(72, 0, 1, 90, 0), (76, 0, 1, 90, 0), (60, 0, 2, 90, 1), (74, 1, 1, 90, 0)])
    # voice 0 sounds 8 sixteenths (4 of them with two notes), voice 1 eight: 4 / 16
    assert VL.voice_overlaps(s) == pytest.approx(4 / 16)


def test_range_violations_use_satb_ranges():
    ok = piece([72, 74], [62, 64], [55, 57], [43, 45])
    assert VL.range_violations(ok) == 0.0
    bad = piece([72, 90], [62, 64], [55, 57], [43, 30])  # 90 too high for a soprano, 30 too low for a bass
    assert VL.range_violations(bad) == pytest.approx(2 / 8)
    assert math.isnan(VL.range_violations(piece([72], [60])))  # not four voices


def test_in_scale_ratio():
    c_major = [60, 64, 67, 72, 65, 69, 71, 62, 60, 64, 67, 60]
    assert VL.in_scale(piece(c_major)) == 1.0
    assert VL.in_scale(piece(c_major + [66])) == pytest.approx(12 / 13)


def test_tonal_distance_hand_computed():
    assert VL.tonal_distance(piece([60, 62], [48, 50])) == pytest.approx(0.0, abs=1e-12)  # octaves
    # C against G: centroids (0, 1, 0, 1, 0, 0.5) and (1/2, sqrt3/2, 1, 0, sqrt3/4, -1/4)
    s3 = math.sqrt(3)
    want = math.sqrt(0.25 + (1 - s3 / 2) ** 2 + 1 + 1 + (s3 / 4) ** 2 + 0.75 ** 2)
    assert VL.tonal_distance(piece([67], [60])) == pytest.approx(want)
    # beats where a voice is silent are skipped
    assert VL.tonal_distance(piece([67, 67], [60, None])) == pytest.approx(want)


def test_summary_pools_parallels_and_report_has_the_table(tmp_path):
    from tunesmith.evaluation.report import evaluate

    a = piece([72, 74, 76, 77], [65, 67, 67, 65], [57, 59, 60, 62], [41, 43, 48, 50])
    b = piece([72, 71, 72, 74], [64, 62, 64, 65], [55, 55, 55, 59], [48, 43, 48, 43])
    s = VL.summarize([a, b])
    pa, pb = VL.parallels(a), VL.parallels(b)
    total = pa["fifths"] + pa["octaves"] + pb["fifths"] + pb["octaves"]
    assert total > 0
    assert s["parallels_per_100"] == pytest.approx(100 * total / (pa["steps"] + pb["steps"]))
    m = evaluate([a, b], [b, a], tmp_path, plots=False)
    assert m["voice_leading"]["parallels_per_100"]["generated"] == pytest.approx(s["parallels_per_100"])
    assert "## Voice leading" in (tmp_path / "report.md").read_text()
    mono = [piece([60, 62, 64, 65]), piece([67, 65, 64, 62])]
    assert "voice_leading" not in evaluate(mono, mono, None, plots=False)


def test_bach_reference_is_clean_by_these_measures():
    """The held-out chorales are the reference: one note per voice, few crossings, few parallels."""
    from tunesmith.data.coconet_data import chorale_split

    _, val = chorale_split()
    s = VL.summarize(val)
    assert len(val) == 35
    assert s["voice_overlaps"] == 0.0
    assert s["range_violations"] < 0.01
    assert s["parallels_per_100"] < 1.0
    assert s["in_scale"] > 0.9
    np.testing.assert_array_less(s["voice_crossings"], 0.05)
