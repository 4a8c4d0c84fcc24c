"""The GAN with rhythm (models/gan_rhythm.py): one-hot WGAN-GP over 4-bar phrases of time-step symbols."""
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FixedBatches as Stream

from tunesmith.config import TrainConfig, load_config
from tunesmith.data.melody_phrases import PhraseCodec
from tunesmith.models import build_model
from tunesmith.models.gan_rhythm import DELIMITER_ID, distinctness, edit_distances
from tunesmith.training.objectives import make_objective

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
VOCAB = ["/", "_", "r", "60", "62", "64", "65", "67"]


def codec(length=16):
    return PhraseCodec(VOCAB, 0.25, length, steps_per_bar=4)


def tiny(length=16, channels=16):
    torch.manual_seed(0)
    return build_model("gan_rhythm", {"vocab_size": len(VOCAB), "phrase_len": length, "steps_per_bar": 4},
                       latent_dim=8, channels=channels)


def real_phrases(n=16, length=16):
    """Quarter notes walking up the scale: pitch, hold, hold, hold, ..."""
    c = codec(length)
    rows = []
    for i in range(n):
        syms = []
        for k in range(length // 4):
            syms += [VOCAB[3 + (i + k) % 5], "_", "_", "_"]
        rows.append(c.encode(syms))
    return torch.tensor(rows)


def test_config_validates_and_builds_on_the_phrase_data():
    cfg = load_config(ROOT / "configs" / "gan_rhythm.toml")
    assert cfg.model["name"] == "gan_rhythm" and cfg.data["encoding"] == "melody_phrases"
    assert cfg.model["loss"] == "wgan-gp" and cfg.train.n_critic == 5
    m = build_model("gan_rhythm", codec(64).model_info(), **{k: v for k, v in cfg.model.items() if k != "name"})
    assert m.seq_len == 64 and m.fake(2).shape == (2, 64, len(VOCAB))


def test_critic_learns_to_separate_real_from_fake():
    """WGAN-GP critic updates on a fixed real batch: the Wasserstein estimate (real - fake) grows from ~0
    and the critic loss falls."""
    m = tiny()
    obj = make_objective(m, TrainConfig(lr=3e-3, betas=[0.5, 0.9], n_critic=5))
    batch = {"tokens": real_phrases()}
    logs = [obj.step(m, m, Stream(batch), s, torch.device("cpu")) for s in range(8)]
    w = [float(l["d_wasserstein"]) for l in logs]
    d = [float(l["d_loss"].detach()) for l in logs]
    assert abs(w[0]) < 0.1 and min(w[-3:]) > w[0] + 0.1, w
    assert min(d[-3:]) < d[0], d
    assert all(float(l["d_gp"]) >= 0 for l in logs)


def test_samples_are_valid_symbol_sequences_and_decode():
    m = tiny().eval()
    c = codec()
    g = torch.Generator().manual_seed(0)
    ids = m.sample_ids(8, g)
    assert ids.shape == (8, 16) and int(ids.min()) >= 0 and int(ids.max()) < len(VOCAB)
    assert not (ids == DELIMITER_ID).any(), "the delimiter is masked: it would end the decoded piece"
    # sampled at a temperature, too: never the delimiter (its logit is -1e4)
    t = m.sample_ids(64, torch.Generator().manual_seed(1), temperature=3.0)
    assert not (t == DELIMITER_ID).any()
    # longer pieces chain phrases; each decodes to a Score lasting exactly `steps` 16ths
    scores = m.generate(c, 3, generator=torch.Generator().manual_seed(2), steps=40)
    assert all(float(s.end) == pytest.approx(40 * 0.25) for s in scores)
    # the same seed gives the same samples
    a = m.sample_ids(4, torch.Generator().manual_seed(5), temperature=1.0)
    b = m.sample_ids(4, torch.Generator().manual_seed(5), temperature=1.0)
    assert torch.equal(a, b)


def test_hold_after_rest_and_leading_hold_decode_by_the_codec_rules():
    c = codec()
    s = c.decode(c.encode(["_", "_", "60", "_", "r", "_", "62", "_", "_", "_", "r", "_", "_", "_", "64", "_"]))
    # a leading hold is a rest; a hold after a rest lengthens the rest
    assert s.pitch.tolist() == [60, 62, 64]
    assert s.start.tolist() == [0.5, 1.5, 3.5]
    assert s.duration.tolist() == [0.5, 1.0, 0.5]


def test_a_few_steps_teach_the_generator_the_rhythm():
    """After 40 steps on quarter-note phrases the generator's argmax holds most non-onset steps (real: 3/4
    of the steps are holds; at initialisation it is about chance)."""
    m = tiny(channels=32)
    obj = make_objective(m, TrainConfig(lr=2e-3, betas=[0.5, 0.9], n_critic=5))
    batch = {"tokens": real_phrases(32)}
    hold = VOCAB.index("_")

    def hold_share():
        m.eval()
        x = m.sample_ids(64, torch.Generator().manual_seed(0))
        m.train()
        return float((x == hold).float().mean())

    before = hold_share()
    for s in range(40):
        obj.step(m, m, Stream(batch), s, torch.device("cpu"))
    after = hold_share()
    assert after > 0.5 and after > before + 0.2, (before, after)


def test_distinctness_figures_by_hand():
    ids = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [2, 3, 4, 1]])
    # pairs: (0,1) identical 0; (0,2) and (1,2): delete the first, append one = 2 edits
    assert edit_distances(ids).tolist() == [0, 2, 2]
    train = np.array([[1, 2, 3, 4], [2, 3, 4, 4]])
    d = distinctness(ids, train)
    assert d["distinct"] == pytest.approx(2 / 3, abs=1e-4)
    assert d["pairwise_edit"] == pytest.approx((0 + 2 + 2) / 3 / 4, abs=1e-4)
    assert d["copies"] == pytest.approx(2 / 3, abs=1e-4)          # rows 0 and 1 are training phrase 0
    assert d["nearest_train"] == pytest.approx((0 + 0 + 1) / 3 / 4, abs=1e-4)  # row 2 vs [2,3,4,4]: 1 of 4


@pytest.mark.skipif("essen-gan-rhythm" not in __import__("tunesmith.zoo", fromlist=["names"]).names(),
                    reason="zoo:essen-gan-rhythm not built")
def test_zoo_gan_rhythm_samples_distinct_valid_melodies_with_rhythm():
    from tunesmith import zoo
    from tunesmith.sampling.generate import generate
    from tunesmith.training import load_run

    model, c, cfg, _ = load_run("zoo:essen-gan-rhythm")
    assert zoo.card("essen-gan-rhythm")["figures"]["distinct"] == 1.0
    ids = model.sample_ids(20, torch.Generator().manual_seed(0))
    assert len(np.unique(ids.numpy(), axis=0)) == 20 and not (ids == DELIMITER_ID).any()
    scores = generate(model, c, 20, seed=0)
    lengths = {round(float(d), 2) for s in scores for d in s.duration}
    assert all(len(s) >= 4 for s in scores) and len(lengths) >= 3, lengths  # several note lengths: rhythm
    assert all(float(s.end) == pytest.approx(16.0) for s in scores)          # 4 bars of 4 beats


@pytest.mark.skipif("essen-gan-rhythm" not in __import__("tunesmith.zoo", fromlist=["names"]).names(),
                    reason="zoo:essen-gan-rhythm not built")
def test_the_page_plays_the_zoo_gan():
    from starlette.testclient import TestClient

    from tunesmith.serve.app import create_app

    c = TestClient(create_app(["zoo:essen-gan-rhythm"]))
    assert [m["name"] for m in c.get("/api/models").json()] == ["essen-gan-rhythm"]
    a = c.post("/api/generate", json={"model": "essen-gan-rhythm", "seed": 3, "tempo": 100}).json()
    b = c.post("/api/generate", json={"model": "essen-gan-rhythm", "seed": 4, "tempo": 100}).json()
    assert a["notes"] and a["length"] == 16.0 and a["notes"] != b["notes"]
