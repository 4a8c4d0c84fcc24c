"""Issue 16, item 3: metre conditioning of the time-step models (label tokens before every song), the sampler's
``--condition``, the scorer's handling of labels, and the metre classifier."""

import numpy as np
import pytest
import torch

from conftest import tiny_toml

from tunesmith.data.notes import Score
from tunesmith.data.timestep import TimeStepCodec, build_timestep, decode_tokens, song_labels
from tunesmith.errors import TunesmithError

LSTM = ("melody_lstm", "hidden = 32\ndropout = 0.0")
TF = ("melody_transformer", "d_model = 32\nlayers = 1\nheads = 2\nff = 64\nmax_len = 32\ndropout = 0.0\n"
                            "prime_delimiters = 8")


def _train(tmp_path, model, condition=True, steps=30):
    from tunesmith.training import train

    cfg = tmp_path / "c.toml"
    cfg.write_text(tiny_toml("tiny_cond", model[0], model[1], 'condition = ["metre"]' if condition else ""))
    train(cfg, tmp_path / "run", device="cpu", max_steps=steps, progress=False)
    return tmp_path / "run"


def test_labels_go_before_each_song_and_only_when_asked():
    plain = build_timestep("essen-small", seq_len=16)
    cond = build_timestep("essen-small", seq_len=16, condition=["metre"])
    v0, v1 = plain.codec.vocab, cond.codec.vocab
    assert v1[:len(v0)] == v0 and not plain.codec.labels           # unconditioned: no labels, ids unchanged
    assert "<metre=3/4>" in cond.codec.labels and "<metre=2/4>" in cond.codec.labels
    syms = [cond.codec.vocab[i] for i in cond.train.stream.tolist()]
    starts = [i for i in range(1, len(syms)) if syms[i - 1] == "/" and syms[i] != "/"]
    assert starts and all(syms[i].startswith("<metre=") for i in starts)  # every song opens with its label
    assert sum(s.startswith("<") for s in syms) == len(starts)          # and labels appear nowhere else
    assert cond.stats["train_songs"] == plain.stats["train_songs"]      # same split
    # every window carries, at every position, the label of the song that position lies in (-1 between songs)
    b = cond.train.batch(torch.arange(len(cond.train)))
    lab = {cond.codec.index[x] for x in cond.codec.labels}
    stream = cond.train.stream.tolist()
    assert b["labels"].shape == (len(cond.train), 17, 1)
    for k, start in enumerate(cond.train.starts.tolist()[:40]):
        assert b["tokens"][k].tolist() == stream[start:start + 17]          # the tokens are the stream itself
        for j in (0, 5, 16):
            before = [t for t in stream[:start + j + 1] if t in lab or t == cond.codec.index["/"]]
            want = before[-1] if before and before[-1] in lab else -1
            assert b["labels"][k, j, 0].item() == want
    assert (b["labels"][:, 0, 0] >= 0).sum() > len(cond.train) // 2      # most windows start inside a song
    with pytest.raises(TunesmithError, match="not supported"):
        build_timestep("essen-small", seq_len=16, condition=["style"])


def test_song_labels_and_decoding_a_label():
    s = Score.from_notes([(60, 0, 1)], time_signature=(6, 8))
    assert song_labels(s, ["metre"]) == ["<metre=6/8>"] and song_labels(s, None) == []
    dec = decode_tokens(["<metre=3/4>", "60", "_", "r", "62", "/"])
    assert dec.notes() == [(60, 0.0, 0.5), (62, 0.75, 0.25)]   # the label takes no time
    assert tuple(dec.time_signature) == (3, 4)


def test_condition_errors_list_the_valid_labels():
    codec = TimeStepCodec(["/", "_", "r", "60", "<metre=3/4>", "<metre=4/4>"])
    assert codec.condition_symbols("metre=3/4") == ["<metre=3/4>"]
    assert codec.condition_symbols({"meter": "4/4"}) == ["<metre=4/4>"]
    with pytest.raises(TunesmithError) as e:
        codec.condition_symbols("metre=5/4")
    msg = str(e.value)
    assert "\n" not in msg and "metre=3/4, metre=4/4" in msg
    with pytest.raises(TunesmithError, match="valid: metre=3/4"):
        codec.condition_symbols("mode=minor")
    with pytest.raises(TunesmithError, match="does not take --condition: it was trained without condition labels"):
        TimeStepCodec(["/", "_", "r", "60"]).condition_symbols("metre=3/4")


@pytest.mark.parametrize("model", [LSTM, TF], ids=["lstm", "transformer"])
def test_tiny_conditioned_run_samples_with_the_label(tmp_path, model):
    from tunesmith.sampling.generate import generate, sample_run
    from tunesmith.training import load_run

    run = _train(tmp_path, model)
    m, codec, _, _ = load_run(run)
    mels = generate(m, codec, 3, seed=0, condition="metre=3/4", temperature=1.0, steps=24)
    assert len(mels) == 3 and all(tuple(x.time_signature) == (3, 4) for x in mels)
    # the label is given to the model: the first sampled symbol follows the label, not the delimiters
    ids = m.sample_ids(codec, 1, "<metre=3/4>", 1.0, 1, 4, torch.Generator().manual_seed(0))
    assert codec.vocab[ids[0][0]] == "<metre=3/4>"
    with pytest.raises(TunesmithError, match=r"valid: .*metre=3/4"):
        generate(m, codec, 1, seed=0, condition="metre=5/4", steps=4)
    paths = sample_run(run, tmp_path / "out", num=2, seed=0, formats="abc", condition="metre=3/4", steps=24)
    assert len(paths) == 2 and all("M:3/4" in p.read_text() for p in paths)


def test_unconditioned_run_refuses_a_condition_and_is_unchanged(tmp_path):
    from tunesmith.sampling.generate import generate
    from tunesmith.training import load_run

    run = _train(tmp_path, LSTM, condition=False, steps=5)
    m, codec, cfg, _ = load_run(run)
    assert not codec.labels and "condition" not in cfg.data
    with pytest.raises(TunesmithError, match="does not take --condition: it was trained without condition labels"):
        generate(m, codec, 1, seed=0, condition="metre=3/4", steps=4)
    assert len(generate(m, codec, 1, seed=0, steps=8)) == 1


def test_scorer_gives_the_true_label_and_does_not_score_it():
    """A model that puts all mass on one symbol: the label position would cost log-prob -inf if it were scored."""
    from tunesmith.evaluation.score import Scorer, score_piece

    codec = TimeStepCodec(["/", "_", "r", "60", "<metre=3/4>"])
    V = len(codec.vocab)

    def lp(ids):
        out = torch.full((len(ids), V), -1e9)
        out[:, codec.index["_"]] = 0.0          # every symbol is a hold
        return out
    r = score_piece(Scorer("hold", codec, {}, 2, lp), ["<metre=3/4>", "60", "_", "_"])
    # scored: 60 (first step, '/' excluded and renormalised), _, _, '/' -> 4 steps, the label is not among them
    assert r["steps"] == 4 and r["notes"] == 1 and r["correct"] == 2
    assert r["nll"] == pytest.approx(2 * 1e9, rel=1e-6)   # 60 and the final '/' are impossible, holds are free


def test_metre_classifier_separates_duple_and_triple_patterns():
    from tunesmith.evaluation.metre import evaluate, features, fit

    rng = np.random.default_rng(0)

    bars = {(3, 4): [(1.0, 1.0, 1.0), (2.0, 1.0), (1.0, 0.5, 0.5, 1.0)],   # quarter-note beats
            (6, 8): [(1.0, 0.5, 1.0, 0.5), (1.5, 1.5), (1.5, 1.0, 0.5)]}   # two dotted-quarter beats

    def song(metre, n_bars):
        notes, t = [], 0.0
        for _ in range(n_bars):
            for d in bars[metre][int(rng.integers(0, 3))]:
                notes.append((60 + int(rng.integers(0, 7)), t, d))
                t += d
        return Score.from_notes(notes, time_signature=metre)
    songs = [song(m, int(rng.integers(4, 9))) for m in [(3, 4), (6, 8)] for _ in range(25)]
    assert features(songs[0]).shape == features(songs[-1]).shape
    clf = fit(songs, min_songs=10)
    assert clf.labels == ["3/4", "6/8"]
    assert evaluate(clf, songs)["accuracy"] == 1.0


# ------------------------------------------------------------------ metre + mode, labels at every step, guidance
def test_metre_and_mode_labels_parse_in_order_and_errors_are_one_line():
    codec = TimeStepCodec(["/", "_", "r", "60", "<metre=3/4>", "<metre=4/4>", "<mode=major>", "<mode=minor>"])
    assert codec.condition_symbols("metre=3/4,mode=minor") == ["<metre=3/4>", "<mode=minor>"]
    assert codec.condition_symbols("mode=minor, meter=4/4") == ["<metre=4/4>", "<mode=minor>"]  # kind order
    assert codec.label_groups == {"metre": [4, 5], "mode": [6, 7]}
    assert codec.model_info()["label_groups"] == {"metre": [4, 5], "mode": [6, 7]}
    assert "label_groups" not in TimeStepCodec(["/", "_", "r", "60"]).model_info()
    for bad, listed in (("mode=dorian", "mode=major, mode=minor"), ("metre=5/4", "metre=3/4, metre=4/4")):
        with pytest.raises(TunesmithError) as e:
            codec.condition_symbols(bad)
        assert "\n" not in str(e.value) and listed in str(e.value)
    with pytest.raises(TunesmithError, match="twice"):
        codec.condition_symbols("mode=major,mode=minor")


def test_song_mode_from_the_notes():
    from tunesmith.data.timestep import song_mode

    a_minor = Score.from_notes([(p, i, 1) for i, p in enumerate([69, 72, 71, 69, 64, 68, 69, 72, 71, 68, 69, 69])])
    c_major = Score.from_notes([(p, i, 1) for i, p in enumerate([60, 64, 67, 65, 64, 62, 60, 67, 65, 64, 62, 60])])
    assert song_mode(a_minor) == "minor" and song_mode(c_major) == "major"
    assert song_labels(a_minor, ["metre", "mode"]) == ["<metre=4/4>", "<mode=minor>"]
    c_major.key = (0, "minor")                          # a corpus that says minor is believed
    assert song_mode(c_major) == "minor"


def test_label_slots_blanking_and_prefix():
    from tunesmith.models.melody_lstm import LabelConditioning

    # vocab: / _ r 60 <metre=3/4> <metre=4/4> <mode=major> <mode=minor>
    lc = LabelConditioning(8, 0, {"metre": [4, 5], "mode": [6, 7]}, dim=4)
    ids = torch.tensor([[0, 0, 4, 7, 3, 1, 0, 5, 3]])
    s = lc.slots(ids)[0].tolist()
    null_metre, null_mode = 2, 5                         # slots: metre 0,1 + null 2; mode 3,4 + null 5
    assert s[0] == [null_metre, null_mode] and s[2] == [0, null_mode] and s[4] == [0, 4] and s[5] == [0, 4]
    assert s[6] == [null_metre, null_mode] and s[8] == [1, null_mode]   # a delimiter ends the song's labels
    # removing a kind's label copies the symbol before it: same positions, the other kind kept
    no_mode = lc.blank(ids, torch.tensor([[False, True]]))
    assert no_mode.tolist() == [[0, 0, 4, 4, 3, 1, 0, 5, 3]]
    assert [r[1] for r in lc.slots(no_mode)[0].tolist()] == [null_mode] * 9
    assert lc.unconditioned(ids).tolist() == [[0, 0, 0, 0, 3, 1, 0, 0, 3]]
    # the context sampling builds for "mode=minor" alone is what training shows when the metre is dropped
    assert lc.prefix([7]) == [0, 7] and lc.prefix([4, 7]) == [4, 7] and lc.prefix([4]) == [4, 4]
    assert lc.blank(torch.tensor([[0, 4, 7]]), torch.tensor([[True, False]])).tolist() == [[0, 0, 7]]
    # the batch's labels (windows starting inside a song) win over what the window shows
    given = torch.full((1, 9, 2), -1)
    given[0, :, 0] = 5
    assert lc.slots(ids, given)[0, 0].tolist() == [1, null_mode]
    lc.train()
    lc.p = 1.0
    t, lab = lc.drop(ids, None)
    assert t.tolist() == lc.unconditioned(ids).tolist() and (lab == -1).all()


def _train_cond(tmp_path, model, steps=60, condition='condition = ["metre", "mode"]', extra="label_dropout = 0.2"):
    from tunesmith.training import train

    cfg = tmp_path / "c.toml"
    cfg.write_text(tiny_toml("tiny_cond", model[0], model[1] + "\n" + extra, condition))
    res = train(cfg, tmp_path / "run", device="cpu", max_steps=steps, progress=False)
    return tmp_path / "run", res


@pytest.mark.parametrize("positions", [False, True], ids=["labels", "labels+bar"])
@pytest.mark.parametrize("model", [LSTM, TF], ids=["lstm", "transformer"])
def test_tiny_metre_mode_model_trains_samples_with_guidance_and_scores_with_labels(tmp_path, model, positions):
    import csv

    from tunesmith.evaluation.score import model_scorer, score_piece
    from tunesmith.sampling.generate import generate
    from tunesmith.training import load_run

    run, _ = _train_cond(tmp_path, model, extra="label_dropout = 0.2\nbar_positions = true" if positions else
                         "label_dropout = 0.2")
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r["split"] == "train" and r["metric"] == "loss"]
    assert float(rows[-1]["value"]) < float(rows[0]["value"])            # it learns
    m, codec, cfg, _ = load_run(run)
    assert m.cond is not None and m.cond.kinds == ["metre", "mode"] and cfg.data["condition"] == ["metre", "mode"]
    assert m.cond.positions == positions
    assert any(x.startswith("<mode=") for x in codec.labels)
    with torch.no_grad():
        m.cond.embed.weight.normal_(0, 1.0)              # make the labels matter, to see they are used
    for w in (1.0, 3.0):
        mels = generate(m, codec, 3, seed=0, condition="metre=3/4,mode=minor", guidance=w, steps=24)
        assert len(mels) == 3 and all(tuple(x.time_signature) == (3, 4) for x in mels)
    ids = m.sample_ids(codec, 4, None, 1.0, None, 16, torch.Generator().manual_seed(0),
                       labels=codec.encode(["<metre=3/4>"]), guidance=2.0)
    assert not any(codec.vocab[i].startswith("<") for r in ids for i in r)   # labels are never sampled
    assert len(generate(m, codec, 2, seed=0, steps=8)) == 2                   # no condition: the null labels
    # scoring: each song's own labels are given, and they change the likelihood
    sc = model_scorer(m, codec, cfg)
    song = ["<metre=3/4>", "<mode=minor>", "60", "_", "62", "_", "64", "_", "_", "_"]
    a = score_piece(sc, song)
    b = score_piece(sc, ["<metre=4/4>", "<mode=major>"] + song[2:])
    c = score_piece(sc, song[2:])                                            # unlabelled: the null labels
    assert a["steps"] == b["steps"] == c["steps"] == 9
    assert len({round(a["nll"], 4), round(b["nll"], 4), round(c["nll"], 4)}) == 3
    with pytest.raises(TunesmithError, match="valid: .*mode=minor"):
        generate(m, codec, 1, seed=0, condition="mode=dorian", steps=4)


def test_transformer_scoring_keeps_the_label_beyond_one_window(tmp_path):
    """A song longer than the attention span: later windows no longer hold the label tokens, but are still
    scored given the labels (log_probs finds them on the whole sequence)."""
    from tunesmith.training import load_run

    run, _ = _train_cond(tmp_path, TF, steps=2)
    m, codec, _, _ = load_run(run)
    with torch.no_grad():
        m.cond.embed.weight.normal_(0, 1.0)
    song = codec.encode(["60", "_", "62", "_"] * 30)
    lab = codec.encode(["<metre=3/4>", "<mode=major>"])
    d = [codec.index["/"]] * 8
    full = m.log_probs(torch.tensor(d + lab + song))
    tail = m.logits(torch.tensor([d + lab + song])[:, -32:])                 # the last window without labels
    assert not torch.allclose(full[-32:], torch.log_softmax(tail[0].float(), -1), atol=1e-4)
    slots = m.cond.slots(torch.tensor([d + lab + song]))[:, -32:]
    with_labels = m.logits(torch.tensor([d + lab + song])[:, -32:], slots=slots)
    assert torch.allclose(full[-16:], torch.log_softmax(with_labels[0].float(), -1)[-16:], atol=1e-4)


def test_a_folder_without_labels_trains_unconditioned(tmp_path, capsys):
    """Every song of a MIDI folder without time signatures reads as 4/4: the metre is dropped with a note."""
    from tunesmith.data.midi import write_midi

    for i in range(6):
        notes = [(60 + (i + k) % 7, k * 0.5, 0.5) for k in range(24)]
        write_midi(Score.from_notes(notes), tmp_path / f"s{i}.mid")
    b = build_timestep(source=str(tmp_path), seq_len=16, condition=["metre"], val_fraction=0.2)
    assert not b.codec.labels and "not conditioned on metre" in capsys.readouterr().err


def test_bar_positions_follow_the_metre_label():
    from tunesmith.models.melody_lstm import LabelConditioning

    # vocab: / _ r 60 <metre=3/4> <metre=4/4> <mode=major> <mode=minor>; 3/4 = 12 steps, 4/4 = 16
    lc = LabelConditioning(8, 0, {"metre": [4, 5], "mode": [6, 7]}, dim=4, bar_steps={4: 12, 5: 16})
    assert lc.positions and lc.embed.num_embeddings == 6 + 49
    song = [3] + [1] * 29
    ids = torch.tensor([[0, 0, 4, 7] + song + [0, 6] + [3, 1, 1]])
    since = lc.since(ids)[0].tolist()
    assert since[:4] == [-1] * 4 and since[4:34] == list(range(30)) and since[34:36] == [-1, -1]
    assert since[36:] == [0, 1, 2]
    pos = (lc.slots(ids)[0, :, 2] - lc.pos0).tolist()
    null = lc.MAX_BAR
    assert pos[4:34] == [t % 12 for t in range(30)]                 # 3/4: the position repeats every 12 steps
    assert pos[:4] == [null] * 4 and pos[36:] == [null] * 3         # no metre (second song: mode only) -> null
    # sampling continues the count: the t-th new symbol after the context sits at since_last + 1 + t
    s = lc.slots(ids[:, :20])
    nxt = lc.step_slots(s[:, -1], lc.since(ids[:, :20])[:, -1], 3)
    assert nxt[0].tolist() == lc.slots(ids[:, :24])[0, -1].tolist()
    # windows carry the count of the song they lie in
    b = build_timestep("essen-small", seq_len=16, condition=["metre"])
    w = b.train.batch(torch.arange(len(b.train)))
    ref, n = [], -1
    for t in b.train.stream.tolist():
        n = -1 if t == 0 or b.codec.vocab[t].startswith("<") else n + 1
        ref.append(n)
    for k, start in enumerate(b.train.starts.tolist()):
        assert w["since"][k].tolist() == ref[start:start + 17]
    assert max(ref) > 17                                              # songs longer than a window
