"""Issue 16, item 3: metre conditioning of the time-step models (label tokens before every song), the sampler's
``--condition``, the scorer's handling of labels, and the metre classifier."""
import textwrap

import numpy as np
import pytest
import torch

from tunesmith.data.notes import Score
from tunesmith.data.timestep import TimeStepCodec, build_timestep, decode_tokens, song_labels
from tunesmith.errors import TunesmithError

TINY = """
name = "tiny_cond"
[data]
encoding = "timestep"
dataset = "essen-small"
seq_len = 16
val_fraction = 0.2
{condition}
[model]
name = "{model}"
{model_extra}
[train]
epochs = 1
batch_size = 8
lr = 0.01
log_every = 5
checkpoint_every = 1000
seed = 0
num_threads = 1
[sample]
temperature = 1.0
steps = 32
"""
LSTM = ("melody_lstm", "hidden = 32\ndropout = 0.0")
TF = ("melody_transformer", "d_model = 32\nlayers = 1\nheads = 2\nff = 64\nmax_len = 32\ndropout = 0.0\n"
                            "prime_delimiters = 8")


def _train(tmp_path, model, condition=True, steps=30):
    from tunesmith.training import train

    cfg = tmp_path / "c.toml"
    cfg.write_text(textwrap.dedent(TINY.format(condition='condition = ["metre"]' if condition else "",
                                               model=model[0], model_extra=model[1])))
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
    # every window starting inside a song starts with that song's label (an input only, never a target)
    w0 = plain.train.batch(torch.arange(len(plain.train)))["tokens"]
    w1 = cond.train.batch(torch.arange(len(cond.train)))["tokens"]
    lab = {cond.codec.index[x] for x in cond.codec.labels}
    stream = cond.train.stream.tolist()
    for k, start in enumerate(cond.train.starts.tolist()):
        before = [t for t in stream[:start + 1] if t in lab or t == cond.codec.index["/"]]
        if stream[start] != cond.codec.index["/"]:
            assert w1[k, 0].item() == before[-1] and before[-1] in lab   # the label of the song it lies in
        else:
            assert w1[k, 0].item() == cond.codec.index["/"]
        assert torch.equal(cond.train.stream[start + 1:start + 17], w1[k, 1:])  # the rest is the stream
    assert w0[:, 0].tolist() != w1[:, 0].tolist()
    with pytest.raises(TunesmithError, match="not supported"):
        build_timestep("essen-small", seq_len=16, condition=["mode"])


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
