"""Piano rolls, AE/VAE/CVAE, sliders and interpolation (seed 001). Tiny sizes: 2 bars x 16 steps."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tunesmith.config import Config, TrainConfig
from tunesmith.data.base import build_data
from tunesmith.data.corpora import load_corpus
from tunesmith.data.midi import read_midi, write_midi
from tunesmith.data.notes import Score
from tunesmith.data.pianoroll import RollData, roll_to_notes, roll_to_score, score_to_roll
from tunesmith.errors import TunesmithError
from tunesmith.models import build_model
from tunesmith.training.checkpoint import load_run
from tunesmith.training.trainer import train

TINY_DATA = dict(encoding="pianoroll", dataset="essen-small", pitches=24, bars=2, steps_per_bar=16,
                 augment=[-1, 0, 1], val_fraction=0.2)
TINY_MODEL = dict(latent_dim=8, hidden=64, bar_hidden=64, bar_code=16, n_sliders=4, dropout=0.0)


def tiny_config(name="vae", data=None, model=None, **train_kw):
    tc = dict(batch_size=16, lr=2e-3, log_every=5, val_every=1000, checkpoint_every=10_000, seed=0, num_threads=1)
    tc.update(train_kw)
    return Config(name="t", data={**TINY_DATA, **(data or {})}, model={"name": name, **TINY_MODEL, **(model or {})},
                  train=TrainConfig(**tc))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one thread is faster, and much faster when other processes share the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def vae_run(one_thread, tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    cfg = tiny_config("vae", data={"max_pieces": 8, "augment": [0], "val_fraction": 0.0}, model={"output": "softmax", "beta": 0.1},
                      batch_size=8, lr=3e-3)
    summary = train(cfg, out, device="cpu", max_steps=300, progress=False)
    return out, summary


# ------------------------------------------------------------------------------------------ encoding
def test_roll_round_trip_exact_on_essen():
    sc = load_corpus("essen-small")[2]
    roll = score_to_roll(sc, 40, 60, 24, 16 * 96, fill="pad")
    assert roll.shape == (1536, 60) and roll.dtype == bool
    back = roll_to_score(roll, 40, 24)
    want = [n for n in sc.notes() if n[1] < 64]
    assert back.notes() == want


def test_repeated_notes_stay_separate_and_loop_fills():
    sc = Score.from_notes([(60, 0, 1), (60, 1, 1), (62, 2, 2)])
    r = score_to_roll(sc, 55, 12, 4, 32, fill="pad")
    assert roll_to_score(r, 55, 4).notes() == [(60, 0.0, 1.0), (60, 1.0, 1.0), (62, 2.0, 2.0)]
    assert not r[16:].any()  # pad: silence after 4 beats
    loop = score_to_roll(sc, 55, 12, 4, 32, fill="loop")
    assert (loop[16:] == loop[:16]).all() and loop[16:].any()
    # out-of-range pitches are folded into the window by octaves
    hi = score_to_roll(Score.from_notes([(60 + 24, 0, 1)]), 55, 12, 4, 8, fill="pad")
    assert hi[:, 60 - 55].any()


def test_roll_to_notes_hand_computed():
    r = np.zeros((6, 3))
    r[0:2, 0] = 0.9; r[3, 0] = 0.6; r[1:6, 2] = 0.7; r[2, 1] = 0.4
    p, s, ln = roll_to_notes(r, 0.5)
    assert sorted(zip(p.tolist(), s.tolist(), ln.tolist())) == [(0, 0, 2), (0, 3, 1), (2, 1, 5)]


def test_transposition_augmentation_is_a_pitch_shift():
    rolls = torch.zeros(1, 4, 8, dtype=torch.bool)
    rolls[0, :, 4] = True  # stored with margin 2: pitch index 2 of the 4-wide view
    ds = RollData(rolls, torch.zeros(1, dtype=torch.long), pitches=4, margin=2, augment=[-1, 0, 2])
    b = ds.batch(torch.arange(3))["roll"]
    assert len(ds) == 3 and b.shape == (3, 4, 4)
    assert [int(x[0].argmax()) for x in b[:2]] == [1, 2]  # -1 semitone: index 1; unshifted: index 2
    assert b[2].sum() == 0  # +2 moves pitch 2 to 4: outside the 4-wide window


def test_pianoroll_builder_and_labels():
    bd = build_data(**{**TINY_DATA, "condition": "meter", "min_label_fraction": 0.0})
    assert len(bd.train) == 3 * len(bd.train.rolls)
    b = bd.train.batch(torch.arange(5))
    assert b["roll"].shape == (5, 32, 24) and set(b["roll"].unique().tolist()) <= {0.0, 1.0}
    assert len(bd.codec.labels) >= 2 and b["label"].max() < len(bd.codec.labels)
    with pytest.raises(TunesmithError):
        build_data(**{**TINY_DATA, "fill": "wrap"})


# ------------------------------------------------------------------------------------------ models
@pytest.mark.parametrize("name,output", [("ae", "sigmoid"), ("vae", "sigmoid"), ("vae", "softmax"),
                                         ("cvae", "sigmoid")])
def test_model_shapes_and_loss(name, output):
    info = {"pitches": 24, "bars": 2, "steps_per_bar": 16, "n_labels": 3}
    m = build_model(name, info, **TINY_MODEL, output=output)
    roll = (torch.rand(4, 32, 24) > 0.9).float()
    lab = torch.tensor([0, 1, 2, 0])
    out = m({"roll": roll, "label": lab})
    assert torch.isfinite(out["loss"]) and out["loss"].dim() == 0
    assert ("kl" in out) == (name != "ae")
    mu, logvar = m.encode(roll, lab if name == "cvae" else None)
    assert mu.shape == (4, 8) and (logvar is None) == (name == "ae")
    m.eval()
    probs = m.decode(mu, lab if name == "cvae" else None)
    assert probs.shape == (4, 32, 24) and float(probs.min()) >= 0 and float(probs.max()) <= 1
    out["loss"].backward()


def test_vae_loss_falls_and_sliders_saved(vae_run):
    out, _ = vae_run
    rows = [l.split(",") for l in (out / "metrics.csv").read_text().splitlines()[1:]]
    losses = [float(r[4]) for r in rows if r[2] == "train" and r[3] == "loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    info = json.loads((out / "sliders.json").read_text())
    assert len(info["dims"]) == 4 and info["scale"] == sorted(info["scale"], reverse=True)
    model, codec, cfg, _ = load_run(out)
    # the slider state is stored with the weights, not recomputed
    assert model.slider_scale.tolist() == pytest.approx(info["scale"], rel=1e-4)
    assert int(model.slider_dims[0]) == info["dims"][0]


def test_sliders_change_the_decoded_roll(vae_run):
    model, codec, _, _ = load_run(vae_run[0])
    base = model.decode(model.slider_z([0.0] * 4))
    changed = 0
    for i in range(4):
        v = [0.0] * 4
        v[i] = 3.0
        changed += int((model.decode(model.slider_z(v)) != base).any())
    assert changed >= 2
    with pytest.raises(TunesmithError):
        model.slider_z([0.0] * 5)
    with pytest.raises(TunesmithError):
        model.slider_z([float("nan")])
    scores = model.generate(codec, 2, sliders=[1.0, -1.0])
    assert scores[0].notes() == scores[1].notes() and len(scores[0]) > 0


def _bce(p, t):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())


def test_interpolation_endpoints_reconstruct_inputs(vae_run, tmp_path):
    model, codec, _, _ = load_run(vae_run[0])
    songs = load_corpus("essen-small")
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    write_midi(songs[0], a); write_midi(songs[5], b)
    ra, rb = codec.encode(read_midi(a)), codec.encode(read_midi(b))
    assert (ra != rb).any()
    pieces = model.generate(codec, 5, interpolate=(str(a), str(b)))
    assert len(pieces) == 5
    za, zb = model.encode_score(codec, read_midi(a)), model.encode_score(codec, read_midi(b))
    da, db = (model.decode(z[None])[0].numpy() for z in (za, zb))
    # each endpoint is closer to its own input than to the other one, and beats a chance roll of the same density
    rng = np.random.default_rng(0)
    for d, own, other in ((da, ra, rb), (db, rb, ra)):
        f1 = lambda x, y: 2 * (x * y).sum() / max(x.sum() + y.sum(), 1)
        chance = np.mean([f1(rng.permuted(own.ravel()).reshape(own.shape), own) for _ in range(5)])
        assert f1(d, own) > chance + 0.1
        assert f1(d, own) > f1(d, other) - 1e-9
    # endpoints of the walk are the decoded endpoints
    assert pieces[0].notes() == codec.decode(da).notes()
    assert pieces[-1].notes() == codec.decode(db).notes()


def test_cvae_condition_matters(tmp_path):
    cfg = tiny_config("cvae", data={"condition": "meter", "min_label_fraction": 0.0})
    train(cfg, tmp_path / "c", device="cpu", max_steps=15, progress=False)
    model, codec, _, _ = load_run(tmp_path / "c")
    assert len(codec.labels) >= 2
    z = torch.zeros(1, 8)
    outs = [model.decode_logits(z, codec.label_index(l)) for l in codec.labels[:2]]
    assert not torch.allclose(outs[0], outs[1])
    with pytest.raises(TunesmithError, match="unknown condition"):
        model.generate(codec, 1, condition="5/7")
    assert len(model.generate(codec, 2, condition=codec.labels[1])) == 2


def test_sample_cli_interpolate(vae_run, tmp_path):
    from tunesmith.cli import main

    songs = load_corpus("essen-small")
    write_midi(songs[1], tmp_path / "a.mid"); write_midi(songs[2], tmp_path / "b.mid")
    rc = main(["sample", str(vae_run[0]), "--interpolate", str(tmp_path / "a.mid"), str(tmp_path / "b.mid"),
               "--num", "3", "--out", str(tmp_path / "o")])
    assert rc == 0
    files = sorted((tmp_path / "o").glob("*.mid"))
    assert len(files) == 3 and all(len(read_midi(f)) > 0 for f in files)
    assert main(["sample", str(vae_run[0]), "--primer", "60 _", "--out", str(tmp_path / "p")]) == 1


# ------------------------------------------------------------------------------------------ seq2seq
def test_chord_symbols_round_trip():
    from tunesmith.data.seq2seq_data import decode_chords, encode_chords

    sc = Score.from_notes([(60, 0, 1), (64, 0, 1), (67, 1, 0.5), (65, 2, 1)])
    toks = encode_chords(sc)
    assert toks == ["60.64", "_", "_", "_", "67", "_", "r", "_", "65", "_", "_", "_"]
    assert decode_chords(toks).notes() == sc.notes()


def test_seq2seq_learns_and_continues_a_primer(tmp_path):
    cfg = Config(name="s2s", data={"encoding": "seq2seq", "dataset": "essen-small", "seq_len": 16},
                 model={"name": "seq2seq", "hidden": 32}, train=TrainConfig(batch_size=16, lr=5e-3, log_every=5,
                                                                             checkpoint_every=10_000, num_threads=1))
    train(cfg, tmp_path / "s", device="cpu", max_steps=40, progress=False)
    rows = [l.split(",") for l in (tmp_path / "s" / "metrics.csv").read_text().splitlines()[1:]]
    losses = [float(r[4]) for r in rows if r[2] == "train" and r[3] == "loss"]
    assert losses[-1] < losses[0]
    model, codec, _, _ = load_run(tmp_path / "s")
    x = torch.randint(0, codec.model_info()["vocab_size"], (3, 32))
    assert torch.isfinite(model({"tokens": x})["loss"])
    g = torch.Generator().manual_seed(0)
    out = model.generate(codec, 2, primer="67 _ 69 _", temperature=0.8, steps=40, generator=g)
    assert len(out) == 2 and [n[:2] for n in out[0].notes()[:2]] == [(67, 0.0), (69, 0.5)]
    assert max(s for _, s, _ in out[0].notes()) < (4 + 40) * 0.25
    with pytest.raises(TunesmithError):
        model.generate(codec, 1, primer="67 _ 1000")
