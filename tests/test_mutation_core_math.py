"""Tests written from the survivors of the mutation run (docs/testing.md "Mutation score"): each checks a value
worked out by hand, or a round trip, in the core maths that the first run left unchecked -- mgeval's pairs,
distances, densities and the table; the 88-key tokens; Score's invariants; the shared Essen preparation."""
import numpy as np
import pytest
from scipy import stats

from tunesmith.data import essen
from tunesmith.data.notes import MAJOR_SCALE, MINOR_SCALE, Score, estimate_key, scale_pitch_classes
from tunesmith.data.tokens import LOWEST, N_KEYS, PAD, Tokens88Codec, score_tokens, windows
from tunesmith.evaluation import compare as C


# ------------------------------------------------------------------------------------------ pairs
def test_intra_pairs_all_unordered_pairs_when_few():
    i, j = C.intra_pairs(4)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    i, j = C.intra_pairs(4, max_pairs=6)           # exactly at the limit: still all of them
    assert len(i) == 6


def test_intra_pairs_sampled_never_pair_a_piece_with_itself_and_cover_every_offset():
    n = 50
    i, j = C.intra_pairs(n, max_pairs=5000)        # 1225 pairs exist: 5000 >= 1225 gives all of them
    assert len(i) == 1225
    i, j = C.intra_pairs(n, max_pairs=1000)
    assert len(i) == len(j) == 1000
    assert (i != j).all() and i.min() == 0 and i.max() == n - 1 and j.min() == 0 and j.max() == n - 1
    off = (j - i) % n
    assert off.min() == 1 and off.max() == n - 1   # j = i + 1 .. i + n - 1 (mod n)
    again = C.intra_pairs(n, max_pairs=1000)       # seeded: the same pairs every time
    assert (again[0] == i).all() and (again[1] == j).all()
    other = C.intra_pairs(n, max_pairs=1000, rng=np.random.default_rng(5))
    assert not (other[0] == i).all()


def test_inter_pairs_every_pair_in_order_then_sampled():
    i, j = C.inter_pairs(2, 3)
    assert i.tolist() == [0, 0, 0, 1, 1, 1] and j.tolist() == [0, 1, 2, 0, 1, 2]
    assert len(C.inter_pairs(2, 3, max_pairs=6)[0]) == 6
    i, j = C.inter_pairs(40, 70, max_pairs=2000)
    assert len(i) == len(j) == 2000
    assert i.min() == 0 and i.max() == 39 and j.min() == 0 and j.max() == 69
    again = C.inter_pairs(40, 70, max_pairs=2000)
    assert (again[0] == i).all() and (again[1] == j).all()


# ------------------------------------------------------------------------------------------ distances
def test_feature_distances_scalar_vector_and_matrix_by_hand():
    x, y = np.array([[1.0], [4.0]]), np.array([[0.0], [10.0]])
    assert C.feature_distances(x, y, np.array([0, 1, 1]), np.array([1, 0, 1])).tolist() == [9.0, 4.0, 6.0]
    x = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    d = C.feature_distances(x, x, np.array([0, 0, 1, 2]), np.array([1, 2, 2, 2]), chunk=1)   # chunked
    assert d.tolist() == [5.0, 10.0, 5.0, 0.0]
    m = np.array([[[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])                          # 2x2 matrices
    assert C.feature_distances(m, m, np.array([0]), np.array([1]), chunk=3).tolist() == [2.0]


# ------------------------------------------------------------------------------------------ densities
def test_density_fit_kde_matches_scipy_and_integrates_to_one():
    v = np.random.default_rng(0).normal(2.0, 1.5, 400)
    d = C.Density.fit(np.append(v, [np.nan, np.inf]))            # non-finite values are left out
    assert len(d.values) == 400 and not d.degenerate and d.kde is not None
    ref = stats.gaussian_kde(v)
    assert d.bandwidth == pytest.approx(np.sqrt(ref.covariance[0, 0]))
    x = np.linspace(-6, 10, 301)
    assert np.allclose(d(x), ref(x), rtol=1e-9, atol=1e-12)
    assert np.trapezoid(d(x), x) == pytest.approx(1.0, abs=1e-3)


def test_density_fit_subsamples_large_sets_and_handles_degenerate_and_empty():
    v = np.arange(100.0)
    d = C.Density.fit(v, max_points=10)
    assert len(d.values) == 10 and len(set(d.values)) == 10 and set(d.values) <= set(v)
    assert len(C.Density.fit(v, max_points=100).values) == 100
    d = C.Density.fit([3.0, 3.0, 3.0])
    assert d.degenerate and d.kde is None and d.point == 3.0 and d.width == pytest.approx(3e-3)
    assert d.bandwidth == pytest.approx(3e-3)
    x = np.array([2.99, 3.0, 3.01])
    assert np.allclose(d(x), stats.norm.pdf(x, 3.0, 3e-3))
    d = C.Density.fit([0.5])                                       # one value: width 1e-3 (not 0.5e-3)
    assert d.degenerate and d.point == 0.5 and d.width == pytest.approx(1e-3)
    d = C.Density.fit([1e6, 1e6 + 1e-4])                           # spread 5e-5 <= 1e-9 x 1e6: no KDE
    assert d.degenerate and d.point == pytest.approx(1e6 + 5e-5)
    d = C.Density.fit([0.0, 1e-3])                                 # a real (small) spread: a KDE
    assert not d.degenerate
    e = C.Density.fit([np.nan])
    assert e.empty and not e.degenerate and e(np.array([0.0, 1.0])).tolist() == [0.0, 0.0]


def test_common_grid_spans_three_bandwidths_and_holds_each_degenerate_peak():
    assert np.array_equal(C.common_grid([]), np.linspace(0, 1, C.KDE_GRID))
    d = C.Density.fit(np.random.default_rng(1).normal(0, 1, 200))
    g = C.common_grid([d], n=64)
    assert len(g) == 64
    assert g[0] == pytest.approx(d.values.min() - 3 * d.bandwidth)
    assert g[-1] == pytest.approx(d.values.max() + 3 * d.bandwidth)
    p = C.Density.fit([0.123456, 0.123456])
    g = C.common_grid([d, p], n=64)
    assert 0.123456 in g and np.all(np.diff(g) > 0) and len(g) == 64 + 33
    assert g.min() == pytest.approx(d.values.min() - 3 * d.bandwidth)


def test_overlap_and_kl_from_values_by_hand():
    grid = np.array([0.0, 1.0, 2.0])
    assert C.overlap_from_values(np.array([0.2, 0.4, 0.2]), np.array([0.4, 0.2, 0.4]), grid) == pytest.approx(0.4)
    assert C.overlap_from_values(np.array([2.0, 2.0]), np.array([2.0, 2.0]), np.array([0.0, 1.0])) == 1.0
    # p = triangle (mass 1), q = uniform 0.5 (mass 1): KL = trapz([0, ln 2, 0]) = ln 2
    assert C.kl_from_values(np.array([0.0, 1.0, 0.0]), np.array([0.5, 0.5, 0.5]), grid) == pytest.approx(np.log(2))
    # both are normalised first: scaling either changes nothing
    assert C.kl_from_values(np.array([0.0, 3.0, 0.0]), np.array([2.0, 2.0, 2.0]), grid) == pytest.approx(np.log(2))
    # q is floored at 1e-10 x its peak where p has mass and q none: p = [0, 0, 2], q = [2, 0, 0] after
    # normalising -> integrand at 2 is 2 ln(2 / 2e-10) = 2 ln 1e10, trapezoid 0.5 x that = ln 1e10
    assert C.kl_from_values(np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), grid) == pytest.approx(np.log(1e10))
    assert C.kl_from_values(np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), grid, floor=1e-4) == \
        pytest.approx(np.log(1e4))
    assert np.isnan(C.kl_from_values(np.zeros(3), np.ones(3), grid))
    assert np.isnan(C.kl_from_values(np.ones(3), np.zeros(3), grid))
    assert C.kl_from_values(np.ones(3), np.ones(3), grid) == 0.0


def test_overlap_area_and_kl_divergence_of_densities():
    rng = np.random.default_rng(2)
    a = C.Density.fit(rng.normal(0, 1, 300))
    far = C.Density.fit(rng.normal(40, 1, 300))
    assert C.overlap_area(a, a) == pytest.approx(1.0, abs=2e-3)
    assert C.overlap_area(a, far) == pytest.approx(0.0, abs=1e-6)
    assert C.kl_divergence(a, a) == pytest.approx(0.0, abs=1e-6)
    assert C.kl_divergence(a, far) > 20
    g = np.linspace(-10, 50, 2001)
    assert C.kl_divergence(a, far, g) == pytest.approx(C.kl_from_values(a(g), far(g), g))
    assert C.overlap_area(a, far, g) == pytest.approx(C.overlap_from_values(a(g), far(g), g))
    e = C.Density.fit([])
    for f in (C.overlap_area, C.kl_divergence):
        assert np.isnan(f(a, e)) and np.isnan(f(e, a))


# ------------------------------------------------------------------------------------------ one feature, a table
def test_compare_distances_names_each_comparison_by_what_it_compares():
    rng = np.random.default_rng(3)
    near, far = rng.normal(1, 0.2, 300), rng.normal(9, 0.2, 300)
    c = C.compare_distances("x", intra_gen=far, intra_ref=near, inter=np.append(near[::-1], np.nan))
    s = c.stats
    assert s["overlap_ref_intra_vs_inter"] > 0.95 and s["kl_ref_intra_vs_inter"] < 0.01
    assert s["overlap_gen_intra_vs_inter"] < 1e-6 and s["kl_gen_intra_vs_inter"] > 5
    assert s["overlap_gen_intra_vs_ref_intra"] < 1e-6 and s["kl_gen_intra_vs_ref_intra"] > 5
    assert s["mean_intra_gen"] == pytest.approx(far.mean()) and s["mean_intra_ref"] == pytest.approx(near.mean())
    assert s["mean_inter"] == pytest.approx(near.mean())          # the NaN is left out
    assert s["n_distances"] == [300, 300, 300] and s["degenerate"] == [False, False, False]
    assert c.name == "x" and set(c.pdf) == {"intra_gen", "intra_ref", "inter"}
    dens = C.Density.fit(near, seed=1)
    assert np.allclose(c.pdf["intra_ref"], dens(c.grid))
    e = C.compare_distances("e", np.array([]), near, near)
    assert np.isnan(e.stats["overlap_gen_intra_vs_inter"]) and np.isnan(e.stats["kl_gen_intra_vs_ref_intra"])
    assert np.isnan(e.stats["mean_intra_gen"]) and e.stats["overlap_ref_intra_vs_inter"] > 0.99
    d = C.compare_distances("d", np.zeros(5), np.zeros(5), np.ones(5))
    assert d.stats["degenerate"] == [True, True, True] and d.stats["overlap_gen_intra_vs_ref_intra"] > 0.99


def test_compare_sets_distances_by_hand():
    gen = {"a": np.array([[0.0], [1.0], [3.0]]), "v": np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])}
    ref = {"a": np.array([[10.0], [14.0]]), "v": np.array([[0.0, 0.0], [6.0, 8.0]])}
    out = C.compare_sets(gen, ref, ["a", "v"])
    assert set(out) == {"a", "v"}
    assert out["a"].intra_gen.tolist() == [1.0, 3.0, 2.0]      # pairs (0,1) (0,2) (1,2)
    assert out["a"].intra_ref.tolist() == [4.0]
    assert out["a"].inter.tolist() == [10.0, 14.0, 9.0, 13.0, 7.0, 11.0]
    assert out["v"].intra_gen.tolist() == [5.0, 0.0, 5.0] and out["v"].inter.tolist() == [0, 10, 5, 5, 0, 10]
    assert out["a"].stats["mean_inter"] == pytest.approx(64 / 6)
    big = {"a": np.arange(30.0)[:, None]}
    s1 = C.compare_sets(big, big, ["a"], max_pairs=20, seed=0)["a"]
    s2 = C.compare_sets(big, big, ["a"], max_pairs=20, seed=0)["a"]
    s3 = C.compare_sets(big, big, ["a"], max_pairs=20, seed=1)["a"]
    assert len(s1.intra_gen) == len(s1.intra_ref) == len(s1.inter) == 20
    assert (s1.inter == s2.inter).all() and not (s1.inter == s3.inter).all()
    assert not (s1.intra_gen == s1.intra_ref).all()              # one generator: the two sets draw different pairs


def test_compare_sets_adds_grouped_pitch_manhattan_when_given_groups():
    from tunesmith.evaluation.features import NoteBatch, group_arrays, grouped_pitch_manhattan

    pieces = [Score.from_notes([(60, 0, 1), (64, 1, 1)]), Score.from_notes([(62, 0, 1), (65, 1, 1), (67, 2, 1)]),
              Score.from_notes([(60, 0, 1), (60, 1, 1)])]
    refs = [Score.from_notes([(72, 0, 1)]), Score.from_notes([(59, 0, 2), (71, 2, 1)])]
    gb, rb = NoteBatch.from_scores(pieces), NoteBatch.from_scores(refs)
    feats = {"a": np.array([[0.0], [1.0], [2.0]])}
    out = C.compare_sets(feats, {"a": np.array([[0.0], [1.0]])}, ["a"], groups=(group_arrays(gb), group_arrays(rb)))
    g = out["grouped_pitch_manhattan"]
    assert g.name == "grouped_pitch_manhattan"
    assert g.intra_gen.tolist() == pytest.approx([grouped_pitch_manhattan(pieces[a], pieces[b])
                                                  for a, b in ((0, 1), (0, 2), (1, 2))])
    assert g.intra_ref.tolist() == pytest.approx([grouped_pitch_manhattan(refs[0], refs[1])])
    assert g.inter.tolist() == pytest.approx([grouped_pitch_manhattan(p, r) for p in pieces for r in refs])


# ------------------------------------------------------------------------------------------ 88-key tokens
def test_score_tokens_keep_the_piano_range_in_onset_order_highest_first():
    s = Score.from_notes([(60, 1.0, 1.0, 90, 0), (21, 0.0, 1.0, 90, 0), (108, 0.0, 1.0, 90, 0), (20, 0.5, 1.0, 90, 0),
                          (109, 0.5, 1.0, 90, 0), (64, 1.0, 1.0, 90, 0), (50, 2.0, 1.0, 90, 9)], drum_tracks=(9,))
    assert score_tokens(s) == [108 - LOWEST, 0, 64 - LOWEST, 60 - LOWEST]    # 20, 109 and the drum dropped
    assert score_tokens(Score()) == []


def test_windows_cover_the_tokens_and_pad_only_the_last():
    t = list(range(10))
    assert windows(t, 4, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, PAD, PAD]]
    assert windows(t, 4, 3) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert windows(t, 4, 2) == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
    assert windows(t, 10, 5) == [t]
    assert windows(t, 12, 4) == [t + [PAD, PAD]]
    assert windows([], 4, 2) == []
    assert windows([7], 3, 1) == [[7, PAD, PAD]]


def test_tokens88_codec_decodes_one_note_per_token_and_rests_for_padding():
    c = Tokens88Codec(seq_len=8, note_duration=0.25)
    assert c.model_info() == {"seq_len": 8, "vocab_size": N_KEYS + 1}
    s = c.decode([39, PAD, 0, 87, 88, 200, -1], tempo=90.0)
    assert s.notes() == [(60, 0.0, 0.25), (21, 0.5, 0.25), (108, 0.75, 0.25)]
    assert s.tempo == 90.0 and s.end == 7 * 0.25 and s.length == 1.75
    back = Tokens88Codec.from_state(c.state())
    assert (back.seq_len, back.note_duration) == (8, 0.25)
    assert Tokens88Codec().seq_len == 64 and Tokens88Codec().note_duration == 0.5
    assert score_tokens(c.decode([5, 50, 87])) == [5, 50, 87]


# ------------------------------------------------------------------------------------------ Score
def test_score_fills_defaults_checks_lengths_and_keeps_metadata_through_select():
    s = Score(pitch=[[60, 62]], start=[0, 1], duration=[1, 1])
    assert s.pitch.dtype == np.int16 and s.pitch.shape == (2,) and s.start.dtype == np.float64
    assert s.velocity.tolist() == [90, 90] and s.velocity.dtype == np.int16
    assert s.track.tolist() == [0, 0] and s.track.dtype == np.int16
    e = Score()
    assert len(e) == 0 and e.velocity.shape == (0,) and e.track.shape == (0,)
    for bad in (dict(start=[0]), dict(duration=[1, 1, 1]), dict(velocity=[90]), dict(track=[0, 0, 0])):
        kw = {"pitch": [60, 62], "start": [0, 1], "duration": [1, 1], **bad}
        name = next(iter(bad))
        with pytest.raises(ValueError, match=f"Score.{name} has {len(bad[name])} values for 2 pitches"):
            Score(**kw)
    full = Score.from_notes([(60, 0, 1, 70, 1), (64, 1, 2, 80, 2)], tempo=90, time_signature=(3, 4), key=(7, "major"),
                            title="t", programs={1: 40}, drum_tracks=(2,), end=8.0, pickup=1.0)
    assert full.velocity.tolist() == [70, 80] and full.track.tolist() == [1, 2]
    sub = full.select(np.array([False, True]))
    assert sub.notes() == [(64, 1.0, 2.0)] and sub.velocity.tolist() == [80] and sub.track.tolist() == [2]
    assert (sub.tempo, sub.time_signature, sub.key, sub.title, sub.programs, sub.drum_tracks, sub.end, sub.pickup) == \
        (90, (3, 4), (7, "major"), "t", {1: 40}, (2,), 8.0, 1.0)
    sub.programs[1] = 0
    assert full.programs == {1: 40}                              # a copy, not the same dict
    assert full.pitched().notes() == [(60, 0.0, 1.0)]


def test_sorted_orders_by_onset_track_then_highest_pitch():
    s = Score.from_notes([(60, 1, 1, 90, 0), (72, 0, 1, 90, 1), (64, 0, 1, 90, 1), (67, 0, 1, 90, 0)])
    o = s.sorted()
    assert o.pitch.tolist() == [67, 72, 64, 60] and o.track.tolist() == [0, 1, 1, 0]


def test_transpose_moves_pitches_and_key_without_touching_the_original():
    s = Score.from_notes([(60, 0, 1), (127, 1, 1)], key=(11, "minor"))
    t = s.transpose(3)
    assert t.pitch.tolist() == [63, 130] and t.key == (2, "minor")
    assert s.pitch.tolist() == [60, 127] and s.key == (11, "minor")
    assert Score.from_notes([(60, 0, 1)]).transpose(-2).key is None


def test_pitch_class_histogram_weights_by_duration():
    s = Score.from_notes([(60, 0, 3), (72, 3, 1), (67, 4, 4)])
    h = s.pitch_class_histogram()
    assert h[0] == pytest.approx(0.5) and h[7] == pytest.approx(0.5) and h.sum() == pytest.approx(1.0)
    assert Score().pitch_class_histogram().tolist() == [0.0] * 12


def test_estimate_key_picks_the_best_correlated_profile():
    major = np.zeros(12)
    major[(MAJOR_SCALE + 7) % 12] = 1.0
    major[7] = 3.0                                              # G major scale, tonic weighted
    assert estimate_key(major) == (7, "major")
    minor = np.zeros(12)
    minor[(MINOR_SCALE + 9) % 12] = 1.0
    minor[9], minor[4] = 3.0, 2.0                              # A natural minor
    assert estimate_key(minor) == (9, "minor")
    assert estimate_key(np.zeros(12)) == (0, "major")
    assert Score.from_notes([(60, 0, 1)], key=(5, "minor")).estimate_key() == (5, "minor")


def test_scale_pitch_classes():
    assert scale_pitch_classes(0, "major").tolist() == [0, 2, 4, 5, 7, 9, 11]
    assert scale_pitch_classes(9, "minor").tolist() == [9, 11, 0, 2, 4, 5, 7]
    assert scale_pitch_classes(7, "dorian").tolist() == [7, 9, 10, 0, 2, 3, 5]   # anything else: natural minor


def test_monophonic_keeps_the_top_voice_cut_at_the_next_onset():
    s = Score.from_notes([(60, 0, 2), (64, 0, 4), (55, 1, 1), (62, 3, 1)])
    assert s.monophonic().notes() == [(64, 0.0, 1.0), (55, 1.0, 1.0), (62, 3.0, 1.0)]
    assert len(Score().monophonic()) == 0


# ------------------------------------------------------------------------------------------ Essen preparation
def test_prepare_melodies_filters_reports_and_transposes(capsys):
    d_major = Score.from_notes([(62, 0, 1), (66, 1, 1), (69, 2, 2), (62, 4, 1)])
    bad = Score.from_notes([(60, 0, 0.375)])
    kept, reasons = essen.prepare_melodies([d_major, bad, Score()], 0.25, essen.SEED_DURATIONS, True, verbose=True)
    assert [sc.pitch.tolist() for sc in kept] == [[60, 64, 67, 60]]
    assert reasons == {"note duration 0.375": 1, "no notes": 1}
    assert capsys.readouterr().err.strip() == "kept 1 of 3 songs (dropped 2: 1 for note duration 0.375; 1 for no notes)"
    kept, _ = essen.prepare_melodies([d_major], 0.25, essen.SEED_DURATIONS, False, verbose=False)
    assert kept[0].pitch.tolist() == [62, 66, 69, 62] and capsys.readouterr().err == ""
    with pytest.raises(Exception, match="no song passed the duration filter"):
        essen.prepare_melodies([d_major], 0.25, (1.0,), False, verbose=False)
    assert essen.check_durations(d_major, (1, 2)) is None and essen.check_durations(d_major, 1.0) is not None
    assert essen.check_durations(Score.from_notes([(60, 0.5, 1)]), step=0.5) is None
    assert essen.check_durations(Score.from_notes([(60, 0.5, 1)]), step=1.0) == "onsets off the 1-beat grid"


def test_prepared_songs_is_the_filtered_transposed_split(capsys):
    from tunesmith.data.corpora import load_corpus, split_by_piece

    raw = load_corpus("essen-small")[:20]
    train, val = essen.prepared_songs("essen-small", max_pieces=20, verbose=False)
    kept, _ = essen.prepare_melodies(raw, 0.25, essen.SEED_DURATIONS, True, verbose=False)
    want_t, want_v = split_by_piece(kept, 0.1, 0)
    assert [s.notes() for s in train] == [s.notes() for s in want_t] and len(val) == len(want_v) >= 1
    assert [s.notes() for s in val] == [s.notes() for s in want_v]
    assert capsys.readouterr().err == ""
    assert all(s.estimate_key() in ((0, "major"), (9, "minor")) for s in train + val)
    t2, v2 = essen.prepared_songs("essen-small", max_pieces=20, val_fraction=0.5, split_seed=3, transpose=False,
                                  verbose=True)
    assert len(v2) == round(len(kept) * 0.5) and len(t2) + len(v2) == len(kept)
    assert "of 20 songs" in capsys.readouterr().err
    originals = {tuple(s.pitch.tolist()) for s in raw}
    assert all(tuple(s.pitch.tolist()) in originals for s in t2 + v2)      # transpose=False: untouched
    allp = essen.prepared_songs("essen-small", verbose=False)
    assert sum(map(len, allp)) > len(kept)                                  # max_pieces None: the whole corpus
    fewer = essen.prepared_songs("essen-small", max_pieces=20, durations=(0.5, 1.0), verbose=False)
    assert sum(map(len, fewer)) < len(kept)


# ------------------------------------------------------------------------------------------ features on a batch
from tunesmith.evaluation import features as F  # noqa: E402


def _batch():
    """Three pieces: a keyed melody with a drum hit, an empty piece, a two-track piece at tempo 60."""
    a = Score.from_notes([(62, 1, 1, 90, 0), (60, 0, 1, 90, 0), (64, 2, 2, 90, 0), (36, 0, 1, 90, 9),
                          (65, 4, 0.5, 90, 0)], drum_tracks=(9,), tempo=120.0, time_signature=(3, 4))
    c = Score.from_notes([(67, 0, 1, 90, 1), (48, 0, 2, 90, 2), (68, 1, 1, 90, 1), (69, 2, 1, 90, 1)], tempo=60.0)
    return [a, Score(), c], F.NoteBatch.from_scores([a, Score(), c])


def test_note_batch_concatenates_sorted_pitched_notes_with_piece_metadata():
    (a, e, c), b = _batch()
    assert b.pitch.tolist() == [60, 62, 64, 65, 67, 48, 68, 69] and b.pitch.dtype == np.int64
    assert b.start.tolist() == [0, 1, 2, 4, 0, 0, 1, 2] and b.duration.tolist() == [1, 1, 2, 0.5, 1, 2, 1, 1]
    assert b.piece.tolist() == [0, 0, 0, 0, 2, 2, 2, 2] and b.offsets.tolist() == [0, 4, 4, 8]
    assert b.track.tolist() == [0, 0, 0, 0, 1, 2, 1, 1] and b.n_pieces == 3 and b.counts.tolist() == [4, 0, 4]
    assert b.beats_per_bar.tolist() == [3.0, 4.0, 4.0] and b.length.tolist() == [4.5, 0.0, 3.0]
    assert b.tempo.tolist() == [120.0, 120.0, 60.0]
    assert F.NoteBatch.from_scores([Score(tempo=0)]).tempo.tolist() == [120.0]     # no tempo: 120
    none = F.NoteBatch.from_scores([])
    assert none.n_pieces == 0 and none.pitch.dtype == np.int64 and len(none.start) == 0


def test_scalar_features_of_a_batch_by_hand():
    _, b = _batch()
    f = F.extract_features(b)
    nan = np.nan
    expect = {
        "n_notes": [4, 0, 4], "used_pitches": [4, 0, 4], "used_pitch_classes": [4, 0, 4],
        "pitch_range": [5, 0, 21], "pitch_mean": [62.75, nan, 63.0],
        "pitch_std": [np.std([60, 62, 64, 65]), nan, np.std([67, 48, 68, 69])],
        "avg_pitch_interval": [5 / 3, nan, (19 + 20 + 1) / 3],          # onset order: 67 48 68 69
        "avg_ioi": [4 / 3, nan, 1.0], "notes_per_bar": [4 / 2, 0.0, 4 / 1],
        "pitches_per_bar": [2.0, 0.0, 4.0], "pitch_classes_per_bar": [2.0, nan, 4.0],
        "empty_bar_rate": [0.0, 1.0, 0.0], "empty_beat_rate": [0.0, 1.0, 0.0],
        "polyphony": [1.0, nan, 5 / 3], "qualified_note_rate": [1.0, nan, 1.0],
        "pitch_entropy": [2.0, nan, 2.0], "pitch_class_entropy": [2.0, nan, 2.0],
    }
    for k, v in expect.items():
        assert np.allclose(f[k], v, equal_nan=True), (k, f[k], v)


def test_entropy_safe_div_and_normalise_by_hand():
    e = F._entropy(np.array([[1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]]))
    assert e[0] == pytest.approx(1.5) and np.isnan(e[1]) and e[2] == 0.0
    assert np.allclose(F._safe_div([1.0, 2.0, 3.0], [2.0, 0.0, -1.0]), [0.5, np.nan, np.nan], equal_nan=True)
    assert F._safe_div(np.ones((2, 3)), np.array([[2.0], [4.0]])).tolist() == [[0.5] * 3, [0.25] * 3]
    m = np.array([[[1.0, 3.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    assert F.normalise_total(m).tolist() == [[[0.25, 0.75], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]
    assert F.normalise_total(np.array([[2.0, 6.0]])).tolist() == [[0.25, 0.75]]


def test_histograms_of_a_batch_by_hand():
    _, b = _batch()
    h = F.pitch_class_histogram(b)
    assert h.shape == (3, 12) and h[1].sum() == 0
    assert h[0][[0, 2, 4, 5]].tolist() == [1 / 4.5, 1 / 4.5, 2 / 4.5, 0.5 / 4.5]
    assert h[2][[7, 0, 8, 9]].tolist() == [0.2, 0.4, 0.2, 0.2]
    c = F.pitch_class_counts(b)
    assert c[0].sum() == 4 and c[2][[7, 0, 8, 9]].tolist() == [1, 1, 1, 1]
    ph = F.pitch_histogram(b)
    assert ph.shape == (3, 128) and ph[0][[60, 62, 64, 65]].tolist() == [1, 1, 1, 1] and ph[2, 48] == 1
    nl = F.note_length_histogram(b)
    assert nl.shape == (3, 12) and nl[1].sum() == 0
    assert nl[0][[2, 1, 3]].tolist() == [0.5, 0.25, 0.25]           # 1/4 x2, 1/2, 1/8
    assert nl[2][[2, 1]].tolist() == [0.75, 0.25]
    seed = F.note_length_histogram(b, "seed")                           # min(int(seconds x 8), 7)
    assert seed.shape == (3, 8)
    assert seed[0][[4, 7, 2]].tolist() == [0.5, 0.25, 0.25]            # 0.5 s -> 4, 1 s -> 7 (capped 8), 0.25 s -> 2
    assert seed[2][7] == 1.0                                           # at 60/min every note lasts >= 1 s
    assert F.n_length_classes("mgeval") == 12 and F.n_length_classes("seed") == 8
    with pytest.raises(ValueError, match="'mgeval' or 'seed'"):
        F.note_length_classes(b, "bars")


def test_transitions_of_a_batch_by_hand():
    _, b = _batch()
    t = F.pitch_class_transitions(b)
    assert t.shape == (3, 12, 12) and t[1].sum() == 0
    # piece 0: 60->62, 62->64, (64 ends at 4, 65 starts at 4) 64->65: three
    assert t[0].sum() == 3 and t[0, 0, 2] == t[0, 2, 4] == t[0, 4, 5] == 1
    # piece 2, tempo 60: track 1 67->68->69 (ends meet starts); track 2's 48 ends at 2, no track-2 note follows
    assert t[2].sum() == 2 and t[2, 7, 8] == t[2, 8, 9] == 1
    cons = F.pitch_class_transitions_consecutive(b)
    assert cons[0].sum() == 3 and cons[2].sum() == 3 and cons[2, 7, 0] == cons[2, 0, 8] == cons[2, 8, 9] == 1
    lt = F.note_length_transitions(b)
    assert lt.shape == (3, 12, 12) and lt[0, 2, 2] == 1 and lt[0, 2, 1] == 1 and lt[0, 1, 3] == 1
    f = F.extract_features(b)
    assert np.allclose(f["pitch_class_transitions"][0].sum(), 1) and f["pitch_class_transitions"][1].sum() == 0
    assert (f["pitch_class_transition_counts"] == t).all() and (f["note_length_transition_counts"] == lt).all()
    assert F.pitch_class_transitions(F.NoteBatch.from_scores([Score(), Score()])).shape == (2, 12, 12)


def test_keys_and_scales_of_a_batch_match_score_estimate_key():
    pieces = []
    for tonic in range(12):
        for mode, scale in (("major", MAJOR_SCALE), ("minor", MINOR_SCALE)):
            notes = [(60 + (tonic + int(s)) % 12, k, 1 + (k == 0) * 2 + (k == 4) * (mode == "minor"))
                     for k, s in enumerate(scale)]
            pieces.append(Score.from_notes([(p, float(i), float(d)) for i, (p, _, d) in enumerate(notes)]))
    b = F.NoteBatch.from_scores(pieces + [Score()])
    keys = F.estimate_keys(b)
    assert keys[:-1].tolist() == [F.key_index(p.estimate_key()) for p in pieces]
    assert keys[-1] == 0
    assert F.key_index((2, "minor")) == 14 and F.key_index((14, "major")) == 2
    r = F.in_scale_ratio(b)
    assert np.allclose(r[:-1], 1.0) and np.isnan(r[-1])
    cmaj = F.in_scale_ratio(b, key=(0, "major"))
    assert cmaj[0] == 1.0 and cmaj[2] == pytest.approx(2 / 7)           # C# major: only C and F are in C major
    sc = F.scale_consistency(b)
    assert np.allclose(sc[:-1], 1.0) and np.isnan(sc[-1])


def test_group_arrays_and_grouped_distance_of_a_batch_by_hand():
    a = Score.from_notes([(60, 0, 1), (61, 1, 1), (62, 2, 1), (65, 3, 1), (66, 4, 1)])
    c = Score.from_notes([(67, 0, 1), (64, 1, 1)])
    b = F.NoteBatch.from_scores([a, Score(), c])
    S, L = F.group_arrays(b)
    assert S.tolist() == [[60, 65], [0, 0], [67, 64]] and L.tolist() == [[3, 2], [0, 0], [1, 1]]
    d = F.grouped_pitch_manhattan_pairs(S, L, np.array([0, 0, 2]), np.array([2, 1, 2]), chunk=1)
    assert d.tolist() == [7 * 1 + 1 * 1, 0.0, 0.0]
    assert F.grouped_pitch_manhattan(a, c) == 8.0
    S1, L1 = F.group_arrays(F.NoteBatch.from_scores([Score.from_notes([(70, 0, 1)])]))
    assert F.grouped_pitch_manhattan_pairs(S, L, np.array([0]), np.array([0]), S1, L1).tolist() == [10.0]
    S0, L0 = F.group_arrays(F.NoteBatch.from_scores([Score(), Score()]))
    assert S0.shape == (2, 1) and L0.sum() == 0
    assert F.pitch_groups([60, 61, 63, 64, 64]) == [[60, 61], [63, 64], [64]]


def test_piece_features_gives_floats_and_arrays_and_takes_a_key():
    s = Score.from_notes([(61, 0, 1), (63, 1, 1), (60, 2, 2)])
    f = F.piece_features(s)
    assert isinstance(f["n_notes"], float) and f["n_notes"] == 3.0 and f["pitch_class_histogram"].shape == (12,)
    assert F.piece_features(s, key=(0, "major"))["in_scale_ratio"] == pytest.approx(1 / 3)
    assert F.piece_features(s, length_classes="seed")["note_length_histogram"].shape == (8,)


def test_empty_beats_and_bars_count_the_units_a_note_sounds_in():
    gap = Score.from_notes([(60, 0, 1), (62, 3, 1)])                       # beats 0 and 3 of 4 sound
    long = Score.from_notes([(60, 0.5, 2.0)], end=4.0)                    # sounds in beats 0, 1, 2
    late = Score.from_notes([(60, 8, 1)])                                 # bars 0, 1 empty of 3
    b = F.NoteBatch.from_scores([gap, long, late])
    assert F.empty_beat_rate(b).tolist() == pytest.approx([0.5, 0.25, 8 / 9])
    assert F.empty_bar_rate(b).tolist() == pytest.approx([0.0, 0.0, 2 / 3])
    one = F.NoteBatch.from_scores([Score.from_notes([(60, 0, 1), (62, 3, 1)], time_signature=(1, 4))])
    assert F.empty_bar_rate(one).tolist() == [0.5] and F.notes_per_bar(one).tolist() == [0.5]
    assert F.pitches_per_bar(one).tolist() == [0.5] and F.pitch_classes_per_bar(one).tolist() == [1.0]
    twice = F.NoteBatch.from_scores([Score.from_notes([(60, 0, 1), (72, 1, 1), (60, 2, 1), (61, 4, 1)])])
    assert F.pitches_per_bar(twice).tolist() == [1.5]                  # bar 0: 60, 72; bar 1: 61
    assert F.pitch_classes_per_bar(twice).tolist() == [1.0]            # bar 0: C only; bar 1: C#
    assert F.avg_ioi(twice).tolist() == pytest.approx([4 / 3]) and F.qualified_note_rate(
        F.NoteBatch.from_scores([Score.from_notes([(60, 0, 0.125), (61, 1, 0.1)])])).tolist() == [0.5]


# ------------------------------------------------------------------------------------------ second round
def test_pairs_switch_to_sampling_exactly_above_the_limit():
    i, j = C.intra_pairs(4, max_pairs=6)                      # 6 pairs exist: all of them, in order
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert len(C.intra_pairs(4, max_pairs=5)[0]) == 5         # one fewer allowed: sampled
    assert len(C.intra_pairs(5, max_pairs=9)[0]) == 9         # 10 exist
    i, j = C.inter_pairs(2, 3, max_pairs=6)
    assert i.tolist() == [0, 0, 0, 1, 1, 1] and j.tolist() == [0, 1, 2, 0, 1, 2]
    assert len(C.inter_pairs(2, 3, max_pairs=5)[0]) == 5


def test_density_subsampling_is_seeded_without_replacement_and_only_above_the_limit():
    v = np.arange(100.0)
    assert C.Density.fit(v, max_points=100).values.tolist() == v.tolist()     # at the limit: untouched
    a, b = C.Density.fit(v, max_points=90), C.Density.fit(v, max_points=90)
    assert len(set(a.values)) == 90 and a.values.tolist() == b.values.tolist()
    assert C.Density.fit(v, max_points=90, seed=1).values.tolist() != a.values.tolist()
    assert C.Density.fit([1, 2, 3]).values.dtype == np.float64


def test_overlap_and_kl_use_the_grid_they_are_given_and_the_floor():
    rng = np.random.default_rng(4)
    a, b = C.Density.fit(rng.normal(0, 1, 200)), C.Density.fit(rng.normal(0.7, 1.3, 200))
    g = np.concatenate([np.linspace(-6, 0, 7), np.linspace(0.05, 8, 400)])     # uneven: dx matters
    assert C.overlap_area(a, b, g) == pytest.approx(C.overlap_from_values(a(g), b(g), g))
    assert C.overlap_area(a, b, g) != pytest.approx(C.overlap_area(a, b), abs=1e-4)
    assert C.kl_divergence(a, b, g) == pytest.approx(C.kl_from_values(a(g), b(g), g))
    assert C.kl_divergence(a, b, g) != pytest.approx(C.kl_divergence(a, b), abs=1e-4)
    far = C.Density.fit(rng.normal(60, 1, 200))
    cg = C.common_grid([a, far])
    assert C.kl_divergence(a, far, floor=1e-4) == pytest.approx(C.kl_from_values(a(cg), far(cg), cg, 1e-4))
    assert C.kl_divergence(a, far, floor=1e-4) < 10 < C.kl_divergence(a, far)            # ~ln 1e4 vs ~ln 1e10
    # a normalised q whose peak is below 1: the floor is relative to that peak (1e-10 x 0.5 here)
    grid = np.array([0.0, 4.0, 8.0])
    assert C.kl_from_values(np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), grid) == pytest.approx(np.log(1e10))


def test_compare_distances_stats_are_the_overlaps_and_kls_of_its_own_pdfs():
    rng = np.random.default_rng(5)
    g, r, x = rng.normal(2, 1, 40), rng.normal(3, 0.5, 40), rng.normal(2.5, 1, 40)
    c = C.compare_distances("f", g, r, x, max_points=10)
    for k, (p, q) in {"ref_intra_vs_inter": ("intra_ref", "inter"), "gen_intra_vs_inter": ("intra_gen", "inter"),
                      "gen_intra_vs_ref_intra": ("intra_gen", "intra_ref")}.items():
        assert c.stats["overlap_" + k] == C.overlap_from_values(c.pdf[p], c.pdf[q], c.grid)
        assert c.stats["kl_" + k] == C.kl_from_values(c.pdf[p], c.pdf[q], c.grid)
    for s, (name, v) in enumerate((("intra_gen", g), ("intra_ref", r), ("inter", x))):
        assert np.allclose(c.pdf[name], C.Density.fit(v, 10, seed=s)(c.grid))          # 10 points, seed s
    again = C.compare_distances("f", g, r, x, max_points=10)
    assert all(np.array_equal(again.pdf[k], c.pdf[k]) for k in c.pdf)
    assert not np.allclose(C.compare_distances("f", g, r, x).pdf["inter"], c.pdf["inter"])


def test_compare_sets_passes_names_and_max_points_on():
    gen = {"a": np.arange(8.0)[:, None] ** 1.5}
    ref = {"a": np.arange(9.0)[:, None]}
    full, few = C.compare_sets(gen, ref, ["a"]), C.compare_sets(gen, ref, ["a"], max_points=5)
    assert full["a"].name == "a" and not np.allclose(full["a"].pdf["inter"], few["a"].pdf["inter"])
    S = np.arange(8.0)[:, None] + 60
    L = np.ones((8, 1))
    Sr, Lr = np.arange(9.0)[:, None] + 60, np.ones((9, 1))
    full = C.compare_sets(gen, ref, ["a"], groups=((S, L), (Sr, Lr)))["grouped_pitch_manhattan"]
    few = C.compare_sets(gen, ref, ["a"], groups=((S, L), (Sr, Lr)), max_points=5)["grouped_pitch_manhattan"]
    assert not np.allclose(full.pdf["inter"], few.pdf["inter"])


def test_essen_details():
    on_grid_enough = Score.from_notes([(60, 0.25 + 5e-7, 1)])
    assert essen.check_durations(on_grid_enough) is None                        # within 1e-6 of the grid
    assert essen.check_durations(Score.from_notes([(60, 0.25 + 5e-5, 1)])) == "onsets off the 0.25-beat grid"
    eighth_offbeat = Score.from_notes([(60, 0.25, 0.5)])
    with pytest.raises(Exception, match=r"no song passed the duration filter \(\{'onsets off the 0.5-beat grid': 2\}\); "
                                        r"set data.durations to the lengths your music uses"):
        essen.prepare_melodies([eighth_offbeat, eighth_offbeat], 0.5, essen.SEED_DURATIONS, False, verbose=False)


def test_essen_reports_by_default(capsys):
    ok = Score.from_notes([(60, 0, 1)])
    essen.prepare_melodies([ok], 0.25, essen.SEED_DURATIONS, False)
    assert capsys.readouterr().err.strip() == "kept 1 of 1 songs (dropped 0: none)"
    from tunesmith.data.corpora import load_corpus, split_by_piece

    essen.prepared_songs("essen-small", max_pieces=6)
    assert "of 6 songs" in capsys.readouterr().err
    kept, _ = essen.prepare_melodies(load_corpus("essen-small")[:20], 0.25, essen.SEED_DURATIONS, True, False)
    t, v = essen.prepared_songs("essen-small", max_pieces=20, val_fraction=0.3, split_seed=7, verbose=False)
    wt, wv = split_by_piece(kept, 0.3, 7)
    assert [s.notes() for s in v] == [s.notes() for s in wv] and [s.notes() for s in t] == [s.notes() for s in wt]


def test_score_dtypes_four_column_notes_and_short_pieces():
    s = Score(pitch=[60, 62], start=[0, 1], duration=[1, 2], velocity=[70, 80], track=[1, 2])
    assert s.duration.dtype == np.float64 and s.velocity.dtype == np.int16 and s.track.dtype == np.int16
    four = Score.from_notes([(60, 0, 1, 70), (62, 1, 1, 80)])
    assert four.velocity.tolist() == [70, 80] and four.track.tolist() == [0, 0]
    t = s.transpose(-12)
    assert t.pitch.dtype == np.int16 and t.pitch.tolist() == [48, 50]
    short = Score.from_notes([(64, 0, 0.5)])
    assert short.pitch_class_histogram()[4] == 1.0
    assert estimate_key(np.ones(12)) == (0, "major")             # no key fits better than another: C major
    cut = Score.from_notes([(60, 2, 4), (62, 3, 1)])
    assert cut.monophonic().notes() == [(60, 2.0, 1.0), (62, 3.0, 1.0)]
