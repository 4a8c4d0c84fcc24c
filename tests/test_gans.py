"""The GAN family: network shapes, adversarial steps, gradient penalty, clipping, encodings, accompaniment."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import FixedBatches as Stream, free_port

from tunesmith.config import TrainConfig
from tunesmith.data.chorale_roll import ChoraleRollCodec, roll_to_score, score_to_roll
from tunesmith.data.gan_data import GanNotesCodec
from tunesmith.data.midi import read_midi, write_midi
from tunesmith.data.notes import Score
from tunesmith.data.tokens import PAD, Tokens88Codec, score_tokens, windows
from tunesmith.data.tuples import TupleCodec, score_to_tuples, tuples_to_score
from tunesmith.models import build_model
from tunesmith.models.gan_base import diversity, gradient_penalty
from tunesmith.training.objectives import make_objective

torch.set_num_threads(1)

TINY = {
    "gan_dense": ({"vocab_size": 20, "seq_len": 100}, dict(latent_dim=16, gen_hidden=[8, 8, 8], disc_hidden=8,
                                                        disc_dense=[8, 8, 8])),
    "lstm_gan": ({"seq_len": 100}, dict(latent_dim=4, hidden=8)),
    "patchgan": ({"seq_len": 64, "vocab_size": 89}, dict(embed_dim=8, hidden=8, disc_channels=[8, 8])),
    "chorale_wgan": ({"seq_len": 32, "n_tracks": 4}, dict(latent_channels=8, gen_widths=[4, 4, 4],
                                                          critic_widths=[4, 4, 4, 4])),
    "gan_onehot": ({"vocab_size": 20, "seq_len": 100}, dict(latent_dim=8, channels=8)),
}
EXPECTED = {"gan_dense": (3, 100), "lstm_gan": (3, 100, 3), "patchgan": (3, 64, 89),
            "chorale_wgan": (3, 4, 32, 128), "gan_onehot": (3, 100, 20)}


def tiny(name, **kw):
    info, k = TINY[name]
    torch.manual_seed(0)
    return build_model(name, info, **{**k, **kw})


def real_batch(name, n=4):
    g = torch.Generator().manual_seed(1)
    if name in ("gan_dense", "gan_onehot"):
        return {"tokens": torch.randint(0, 20, (n, 100), generator=g)}
    if name == "lstm_gan":
        return {"tuples": torch.randn(n, 100, 3, generator=g)}
    if name == "patchgan":
        return {"tokens": torch.randint(0, 89, (n, 64), generator=g)}
    return {"roll": (torch.rand(n, 4, 32, 128, generator=g) > 0.97).float()}


@pytest.mark.parametrize("name", sorted(TINY))
def test_network_shapes(name):
    m = tiny(name)
    x = m.fake(3)
    assert tuple(x.shape) == EXPECTED[name]
    assert m.critic_score(x).shape == (3,)
    assert m.critic_score(m.real_input(real_batch(name, 3))).shape == (3,)


@pytest.mark.parametrize("name", sorted(TINY))
def test_one_adversarial_step_changes_both_networks(name):
    m = tiny(name)
    loss = m.loss_kind
    cfg = TrainConfig(lr=1e-2, n_critic=2 if loss != "bce" else 1)
    obj = make_objective(m, cfg)
    g0 = [p.detach().clone() for p in m.generator.parameters()]
    d0 = [p.detach().clone() for p in m.critic.parameters()]
    logs = obj.step(m, m, Stream(real_batch(name)), 0, torch.device("cpu"))
    assert any(not torch.equal(a, b) for a, b in zip(g0, m.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, m.critic.parameters()))
    for k in ("d_loss", "g_loss", "d_grad_norm", "g_grad_norm", "g_distinct", "g_pairwise"):
        assert k in logs and np.isfinite(float(torch.as_tensor(logs[k]).detach()))
    if loss != "bce":
        assert "d_wasserstein" in logs
    if loss == "wgan-gp":
        assert float(logs["d_gp"]) >= 0


def test_gradient_penalty_of_a_linear_critic():
    w = torch.tensor([3.0, 4.0])  # grad of x.w is w everywhere: norm 5, penalty (5 - 1)^2 = 16
    critic = lambda x: x @ w  # noqa: E731
    gp, norm = gradient_penalty(critic, torch.randn(6, 2), torch.randn(6, 2))
    assert float(gp) == pytest.approx(16.0)
    assert float(norm) == pytest.approx(5.0)
    w2 = torch.tensor([0.6, 0.8])  # unit gradient: no penalty
    gp, _ = gradient_penalty(lambda x: x @ w2, torch.randn(6, 2), torch.randn(6, 2))
    assert float(gp) == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_trains_the_critic_through_it():
    m = tiny("chorale_wgan")
    out = m(real_batch("chorale_wgan"), mode="critic")
    out["loss"].backward()
    assert all(p.grad is not None for p in m.critic.parameters())
    assert "gp" in out and "wasserstein" in out


def test_clipping_keeps_critic_weights_in_range():
    m = tiny("gan_dense", loss="wgan", noise=0.1, l2=0.1)
    assert any(float(p.detach().abs().max()) > 0.01 for p in m.critic.parameters())
    obj = make_objective(m, TrainConfig(lr=5e-5, optimizer="rmsprop", n_critic=3, clip_critic=0.01))
    obj.step(m, m, Stream(real_batch("gan_dense")), 0, torch.device("cpu"))
    assert all(float(p.detach().abs().max()) <= 0.01 + 1e-9 for p in m.critic.parameters())


def test_diversity_indicator():
    same = torch.zeros(8, 10, dtype=torch.long)
    assert diversity(same) == (pytest.approx(1 / 8), 0.0)
    d, pw = diversity(torch.eye(4, dtype=torch.long))
    assert d == 1.0 and pw == pytest.approx(0.5)  # rows of 4 differ in 2 positions


def test_seed000_read_back_and_fallback():
    m = tiny("gan_dense")
    V = 20
    idx = torch.arange(V)
    assert torch.equal(m.discrete(m.normalise(idx)), idx)  # exact indices survive the [-1, 1] scaling
    assert int(m.discrete(torch.tensor([1.0]))[0]) == -1  # tanh's top end is index V: out of range
    codec = GanNotesCodec(list(range(60, 80)), 100, 0.5)
    sc = codec.decode([0, 19, -1])
    assert sc.notes() == [(60, 0.0, 0.5), (79, 0.5, 0.5), (72, 1.0, 0.5)]


MELODY = Score.from_notes([(60, 0, 1), (62, 1, 0.5), (64, 2, 1.5), (65, 3.5, 0.25), (67, 3.75, 4), (72, 7.75, 0.125)],
                          end=7.875)


def test_tuples_round_trip_through_midi(tmp_path):
    t = score_to_tuples(MELODY)
    assert t[:, 0].tolist() == [60, 62, 64, 65, 67, 72]
    assert t[:, 1].tolist() == [1, 0.5, 1.5, 0.25, 4, 0.125]
    assert t[:, 2].tolist() == [1, 1, 1.5, 0.25, 4, 0.125]  # onset to onset, the seed's "rest duration"
    sc = tuples_to_score(t)
    back = read_midi(write_midi(sc, tmp_path / "t.mid"))
    assert np.array_equal(score_to_tuples(back), t)
    assert back.notes() == MELODY.notes()
    g = score_to_tuples(MELODY, rest="gap")
    assert g[:, 2].tolist() == [0, 0.5, 0, 0, 0, 0]
    assert tuples_to_score(g, rest="gap").notes() == MELODY.notes()
    codec = TupleCodec(t.mean(0), t.std(0) + 1e-6, 6)
    assert np.allclose(codec.snap(codec.normalise(t)), t)


def test_chorale_roll_round_trip_through_midi(tmp_path):
    notes = [(72, 0, 1, 90, 0), (74, 1, 1, 90, 0), (67, 0, 2, 90, 1), (64, 0, 0.5, 90, 2), (60, 0.5, 1.5, 90, 2),
             (48, 0, 2, 90, 3)]
    sc = Score.from_notes(notes, end=2.0)
    roll = score_to_roll(sc, 0.25, 4, 32)
    assert roll.shape == (4, 32, 128) and roll[0, :4, 72].all() and not roll[0, 4:, 72].any()
    dec = roll_to_score(roll)
    back = read_midi(write_midi(dec, tmp_path / "c.mid"))
    assert np.array_equal(score_to_roll(back, 0.25, 4, 32), roll)
    assert sorted(back.notes()) == sorted(n[:3] for n in [(p, float(s), float(d)) for p, s, d, _, _ in notes])


def test_tokens_windows_and_decode():
    sc = Score.from_notes([(60, 0, 1), (64, 1, 1), (10, 2, 1), (67, 3, 1)])
    toks = score_tokens(sc)
    assert toks == [39, 43, 46]  # pitch - 21; pitch 10 is off the piano
    w = windows(toks * 30, 64, 32)
    assert all(len(x) == 64 for x in w) and w[-1][-1] == PAD
    dec = Tokens88Codec(4, 0.5).decode([39, PAD, 43, 87])
    assert dec.notes() == [(60, 0.0, 0.5), (64, 1.0, 0.5), (108, 1.5, 0.5)]


def test_accompaniment_keeps_the_given_voice():
    m = tiny("chorale_wgan").eval()
    codec = ChoraleRollCodec(32, 0.25, 4)
    melody = Score.from_notes([(72, 0, 1), (71, 1, 1), (69, 2, 2), (67, 4, 4), (72, 8, 2)], end=10)
    outs = m.accompany(codec, melody, n=2, generator=torch.Generator().manual_seed(0))
    for sc in outs:
        sop = sc.select(sc.track == 0)
        assert sop.notes() == melody.notes()
        assert sc.length == pytest.approx(16.0)  # two windows of 32 sixteenths


def test_maestro_loader(tmp_path):
    from tunesmith.data.maestro import load_maestro

    rows = []
    for i, split in enumerate(["train", "train", "validation", "test"]):
        rel = f"2018/piece{i}.midi"
        (tmp_path / "2018").mkdir(exist_ok=True)
        write_midi(Score.from_notes([(60 + i, 0, 1), (64 + i, 1, 1)]), tmp_path / rel)
        rows.append({"canonical_composer": f"C{i}", "canonical_title": f"T{i}", "split": split, "year": 2018,
                     "midi_filename": rel, "audio_filename": rel.replace(".midi", ".wav"), "duration": 1.0})
    cols = list(rows[0])
    (tmp_path / "maestro-v3.0.0.json").write_text(json.dumps({c: {str(i): r[c] for i, r in enumerate(rows)}
                                                              for c in cols}))
    sp = load_maestro(tmp_path)
    assert [len(sp[s]) for s in ("train", "validation", "test")] == [2, 1, 1]
    assert sp["validation"][0].notes()[0][0] == 62 and sp["train"][1].title == "C1 - T1"
    import csv

    with open(tmp_path / "maestro-v3.0.0.csv", "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    assert len(load_maestro(tmp_path, ("test",))["test"]) == 1
    from tunesmith.data.base import build_data

    b = build_data("tokens88", maestro_dir=str(tmp_path), seq_len=4, stride=2)
    assert b.train.batch(torch.arange(len(b.train)))["tokens"].shape[1] == 4 and len(b.reference) == 1


TINY_GAN = """
name = "tiny_gan"
[data]
encoding = "gan_notes"
dataset = "essen-small"
seq_len = 100
stride = 50
[model]
name = "gan_dense"
loss = "wgan"
latent_dim = 16
gen_hidden = [16, 16, 16]
disc_hidden = 8
disc_dense = [8, 8, 8]
noise = 0.1
l2 = 0.1
[train]
max_steps = 4
batch_size = 4
lr = 5e-5
optimizer = "rmsprop"
n_critic = 2
clip_critic = 0.01
log_every = 2
checkpoint_every = 2
num_threads = 1
"""


def test_train_checkpoint_png_and_sample(tmp_path):
    from tunesmith.sampling.generate import sample_run
    from tunesmith.training import train

    cfg = tmp_path / "g.toml"
    cfg.write_text(textwrap.dedent(TINY_GAN))
    train(cfg, tmp_path / "run", device="cpu", progress=False)
    run = tmp_path / "run"
    assert (run / "samples" / "step_000002.png").exists() and (run / "samples" / "step_000004.png").exists()
    rows = (run / "gan_diversity.csv").read_text().splitlines()
    assert rows[0] == "step,distinct,pairwise" and [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    metrics = (run / "metrics.csv").read_text()
    assert "d_wasserstein" in metrics and "g_grad_norm" in metrics and "g_distinct" in metrics
    a = sample_run(run, tmp_path / "a", num=2, seed=3)
    b = sample_run(run, tmp_path / "b", num=2, seed=3)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert len(read_midi(a[0])) == 100


TINY_CHORALE = """
name = "tiny_chorale"
[data]
encoding = "chorale_roll"
dataset = "bach-chorales"
max_pieces = 6
hop = 32
[model]
name = "chorale_wgan"
latent_channels = 8
gen_widths = [4, 4, 4]
critic_widths = [4, 4, 4, 4]
[train]
batch_size = 4
lr = 1e-4
n_critic = 2
log_every = 1
checkpoint_every = 1000
num_threads = 1
"""


@pytest.mark.skipif(not (__import__("pathlib").Path.home() / ".cache/tunesmith/corpus-bach-chorales-v1.pkl").exists()
                    and "TUNESMITH_CACHE" not in os.environ, reason="bach-chorales not parsed yet (minutes)")
def test_ddp_two_processes_gradient_penalty(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(textwrap.dedent(TINY_CHORALE))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        str(free_port()), "-m", "tunesmith.cli", "train", str(cfg), "--out", str(out), "--max-steps", "3",
                        "--device", "cpu", "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((out / "checkpoint" / "meta.json").read_text())
    assert meta["world_size"] == 2 and meta["step"] == 3
    assert not [e for e in os.listdir(out) if e.startswith(".checkpoint")]
    assert "d_gp" in (out / "metrics.csv").read_text()


def test_chorale_decoding_gives_each_voice_one_note_per_step():
    roll = np.zeros((4, 8, 128), np.float32)
    roll[0, :, 72] = 0.9
    roll[0, :4, 74] = 0.7      # a weaker neighbour under the soprano: dropped
    roll[1, 2:6, 60] = 0.6
    roll[2, :, 55] = 0.3       # below the threshold everywhere: silent voice
    sc = ChoraleRollCodec(8, 0.25, 4).decode(roll)
    assert sc.select(sc.track == 0).notes() == [(72, 0.0, 2.0)]
    assert sc.select(sc.track == 1).notes() == [(60, 0.5, 1.0)]
    assert not (sc.track == 2).any()
    # the plain threshold keeps every active pitch
    assert len(roll_to_score(roll).select(roll_to_score(roll).track == 0)) == 2
