"""Every metric against values worked out by hand on tiny pieces."""
import math

import numpy as np
import pytest

from tunesmith.data.notes import Score
from tunesmith.evaluation import features as F
from tunesmith.evaluation.compare import Density, compare_distances, intra_pairs, kl_divergence, overlap_area


@pytest.fixture
def tune():
    # 2/4: bar 0 = [0,2) C D, bar 1 = [2,4) E F (eighths) + rest, bar 2 = [4,6) C half note
    return Score.from_notes([(60, 0, 1), (62, 1, 1), (64, 2, 0.5), (65, 2.5, 0.5), (60, 4, 2)],
                            time_signature=(2, 4))


def test_counts_and_pitch_statistics(tune):
    f = F.piece_features(tune)
    assert f["n_notes"] == 5
    assert f["used_pitches"] == 4 and f["used_pitch_classes"] == 4
    assert f["pitch_range"] == 5
    assert f["pitch_mean"] == pytest.approx((60 + 62 + 64 + 65 + 60) / 5)
    assert f["pitch_std"] == pytest.approx(np.std([60, 62, 64, 65, 60]))
    assert f["avg_pitch_interval"] == pytest.approx((2 + 2 + 1 + 5) / 4)
    assert f["avg_ioi"] == pytest.approx((1 + 1 + 0.5 + 1.5) / 4)


def test_bars_and_beats(tune):
    f = F.piece_features(tune)
    assert f["notes_per_bar"] == pytest.approx(5 / 3)
    assert f["pitches_per_bar"] == pytest.approx((2 + 2 + 1) / 3)
    assert f["pitch_classes_per_bar"] == pytest.approx(5 / 3)
    assert f["empty_bar_rate"] == 0.0
    assert f["empty_beat_rate"] == pytest.approx(1 / 6)  # beat 3 (time 3..4) is silent
    gap = Score.from_notes([(60, 0, 1), (60, 8, 1)])  # 4/4: bars [0,4) [4,8) [8,12)... length 9 -> 3 bars
    g = F.piece_features(gap)
    assert g["empty_bar_rate"] == pytest.approx(1 / 3)
    assert g["empty_beat_rate"] == pytest.approx(7 / 9)
    held = Score.from_notes([(60, 0, 9)])  # one note held over three bars: no bar is empty
    assert F.piece_features(held)["empty_bar_rate"] == 0.0


def test_tonality(tune):
    f = F.piece_features(tune)
    assert f["in_scale_ratio"] == 1.0 and f["scale_consistency"] == 1.0
    # C# and F# are outside C major: 2 of 6 notes; the best scale (D major) holds 5 of 6
    s = Score.from_notes([(60, 0, 1), (61, 1, 1), (62, 2, 1), (64, 3, 1), (66, 4, 1), (67, 5, 1)])
    assert F.piece_features(s, key=(0, "major"))["in_scale_ratio"] == pytest.approx(4 / 6)
    assert F.piece_features(s)["scale_consistency"] == pytest.approx(5 / 6)
    assert F.piece_features(tune)["pitch_entropy"] == pytest.approx(-(0.4 * math.log2(0.4) + 3 * 0.2 * math.log2(0.2)))
    same = Score.from_notes([(60, 0, 1), (72, 1, 1)])
    assert F.piece_features(same)["pitch_entropy"] == pytest.approx(1.0)
    assert F.piece_features(same)["pitch_class_entropy"] == 0.0


def test_detected_key_matches_score_estimate_key():
    rng = np.random.default_rng(3)
    scores = [Score.from_notes([(int(p), i, 1) for i, p in enumerate(rng.integers(55, 80, 20))]) for _ in range(20)]
    b = F.NoteBatch.from_scores(scores)
    keys = F.estimate_keys(b)
    assert [F.key_index(s.estimate_key()) for s in scores] == keys.tolist()


def test_histograms_and_transitions(tune):
    f = F.piece_features(tune)
    # duration-weighted: C 1+2, D 1, E 0.5, F 0.5 of 5 beats
    assert np.allclose(f["pitch_class_histogram"][[0, 2, 4, 5]], [0.6, 0.2, 0.1, 0.1])
    t = f["pitch_class_transition_counts"]  # mgeval's definition: the rest before the last C ends F -> C
    assert t.sum() == 3 and t[0, 2] == t[2, 4] == t[4, 5] == 1
    assert f["pitch_class_transitions"][0, 2] == pytest.approx(1 / 3)
    c = F.pitch_class_transitions_consecutive(F.NoteBatch.from_scores([tune]))[0]  # ours: across the rest
    assert c.sum() == 4 and c[0, 2] == c[2, 4] == c[4, 5] == c[5, 0] == 1
    assert f["pitch_class_transitions_consecutive"][0, 2] == pytest.approx(0.25)
    # lengths 1, 1, 0.5, 0.5, 2 -> classes quarter(2), 8th(3), half(1)
    assert np.allclose(f["note_length_histogram"][[1, 2, 3]], [0.2, 0.4, 0.4])
    nl = f["note_length_transition_counts"]
    assert nl[2, 2] == nl[2, 3] == nl[3, 3] == nl[3, 1] == 1
    # seed 000's 8 classes at 120 bpm: int(seconds*8): 1 beat = 0.5 s -> 4, 0.5 -> 2, 2 beats -> 7 (capped)
    b = F.NoteBatch.from_scores([tune])
    assert F.note_length_classes(b, "seed").tolist() == [4, 4, 2, 2, 7]
    # dotted and triplet classes
    tri = Score.from_notes([(60, 0, 1 / 3), (60, 1, 0.75), (60, 2, 1.5), (60, 4, 3)])
    assert F.note_length_classes(F.NoteBatch.from_scores([tri])).tolist() == [11, 7, 6, 5]


def test_polyphony_and_qualified_notes():
    chord = Score.from_notes([(60, 0, 2), (64, 0, 2), (67, 0, 1), (72, 3, 1)])
    f = F.piece_features(chord)
    assert f["polyphony"] == pytest.approx((2 + 2 + 1 + 1) / 3)  # 6 note-beats over 3 sounding beats
    assert f["avg_ioi"] == pytest.approx(3.0)
    short = Score.from_notes([(60, 0, 0.0625), (62, 1, 0.125), (64, 2, 1)])
    assert F.piece_features(short)["qualified_note_rate"] == pytest.approx(2 / 3)


def test_grouped_pitch_manhattan_by_hand(tune):
    assert F.pitch_groups([60, 62, 64, 65, 60]) == [[60], [62], [64, 65], [60]]
    other = Score.from_notes([(61, 0, 1), (62, 1, 1), (70, 2, 1)])  # groups [61, 62], [70]
    # zip stops at the shorter list: |60-61| (group [60] vs [61, 62]) + |62-70|
    assert F.grouped_pitch_manhattan(tune, other) == 9.0
    assert F.grouped_pitch_manhattan(tune, tune) == 0.0
    a = Score.from_notes([(60, 0, 1), (61, 1, 1), (62, 2, 1)])  # one group [60, 61, 62]
    c = Score.from_notes([(50, 0, 1), (51, 1, 1)])  # [50, 51]
    assert F.grouped_pitch_manhattan(a, c) == 20.0


def test_batch_equals_one_by_one(tune):
    rng = np.random.default_rng(0)
    scores = [tune] + [Score.from_notes([(int(p), float(i) / 2, 0.5) for i, p in enumerate(rng.integers(50, 90, 12))],
                                        time_signature=(3, 4)) for _ in range(5)]
    batch = F.extract_features(F.NoteBatch.from_scores(scores))
    for k, s in enumerate(scores):
        one = F.piece_features(s)
        for name in F.SCALAR_FEATURES:
            assert batch[name][k] == pytest.approx(one[name], nan_ok=True), name
        for name in F.VECTOR_FEATURES:
            assert np.allclose(batch[name][k], one[name]), name


def test_undefined_values_are_nan_not_errors():
    one = F.piece_features(Score.from_notes([(60, 0, 1)]))
    assert math.isnan(one["avg_pitch_interval"]) and math.isnan(one["avg_ioi"])
    assert one["pitch_range"] == 0 and one["polyphony"] == 1.0
    drums = Score.from_notes([(36, 0, 1)], drum_tracks=(0,))
    d = F.piece_features(drums)
    assert d["n_notes"] == 0 and math.isnan(d["pitch_mean"])


def test_overlap_and_kl():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 3000), rng.normal(0, 1, 3000)
    far = rng.normal(10, 1, 3000)
    da, db, df = Density.fit(a), Density.fit(b), Density.fit(far)
    assert overlap_area(da, db) > 0.9 and kl_divergence(da, db) < 0.05
    assert overlap_area(da, df) < 0.01 and kl_divergence(da, df) > 10
    # two normals one sd apart: overlap = 2 * Phi(-0.5) = 0.617, KL = 0.5
    c = Density.fit(rng.normal(1, 1, 3000))
    assert overlap_area(da, c) == pytest.approx(0.617, abs=0.05)
    assert kl_divergence(da, c) == pytest.approx(0.5, abs=0.12)


def test_degenerate_distances_do_not_crash():
    z = np.zeros(50)
    r = compare_distances("x", z, z, z)
    assert r.stats["overlap_ref_intra_vs_inter"] == pytest.approx(1.0, abs=0.02)
    assert r.stats["degenerate"] == [True, True, True]
    r2 = compare_distances("x", z, z, np.ones(50))
    assert r2.stats["overlap_ref_intra_vs_inter"] < 0.01
    r3 = compare_distances("x", np.array([np.nan]), z, z)
    assert math.isnan(r3.stats["overlap_gen_intra_vs_inter"])


def test_intra_pairs_leave_one_out():
    i, j = intra_pairs(5)
    assert len(i) == 10 and (i != j).all()
    i, j = intra_pairs(1000, max_pairs=5000)
    assert len(i) == 5000 and (i != j).all()
