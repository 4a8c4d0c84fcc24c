"""Attribute-regularised latents of the melody VAE (AR-VAE, Pati & Lerch 2020): the regulariser by hand, a
short training that orders the latent dimensions by the attributes, the sliders that move those dimensions,
and the config checks."""
import math
import textwrap

import numpy as np
import pytest
import torch

from tunesmith.errors import TunesmithError
from tunesmith.models.melody_vae import ATTRIBUTES, MelodyVAE, attribute_reg_loss, phrase_attributes, spearman

VOCAB = ["/", "_", "r"] + [str(p) for p in range(60, 73)]
PT = np.array([int(v) if v.isdigit() else -1 for v in VOCAB])


def test_regulariser_by_hand():
    # one attribute: codes 0, 0.1, 0.3 with attributes 1, 2, 2; delta 10
    z = torch.tensor([[0.0], [0.1], [0.3]])
    a = torch.tensor([[1.0], [2.0], [2.0]])
    # pairs (0,1): |tanh(-1) + 1|; (0,2): |tanh(-3) + 1|; (1,2): |tanh(-2) - 0| (tied attributes want equal
    # codes); each pair twice (i, j) and (j, i); the diagonal adds 0; mean over the 9 pairs
    want = 2 * ((1 - math.tanh(1)) + (1 - math.tanh(3)) + math.tanh(2)) / 9
    assert float(attribute_reg_loss(z, a, 10.0)[0]) == pytest.approx(want, rel=1e-6)
    assert want == pytest.approx(0.26831, abs=1e-5)
    # two attributes at once: the second ordered the wrong way round, far apart -> close to 2 per off-diagonal pair
    z2 = torch.tensor([[0.0, 0.0], [0.1, 5.0], [0.3, 10.0]])
    a2 = torch.tensor([[1.0, 3.0], [2.0, 2.0], [2.0, 1.0]])
    got = attribute_reg_loss(z2, a2, 10.0)
    assert float(got[0]) == pytest.approx(want, rel=1e-6)
    assert float(got[1]) == pytest.approx(2 * 6 / 9, abs=1e-6)
    # and ordered the right way round it is close to 0
    assert float(attribute_reg_loss(-z2[:, 1:], a2[:, 1:], 10.0)[0]) == pytest.approx(0.0, abs=1e-6)


def _phrases(n, length=16, seed=0):
    """Random phrases with varied density, height, range, steps and rests."""
    rng = np.random.default_rng(seed)
    idx = {v: i for i, v in enumerate(VOCAB)}
    out = []
    for _ in range(n):
        p_note, p_rest, p_step = rng.uniform(0.15, 0.9), rng.uniform(0, 0.4), rng.uniform(0, 1)
        pitch, row = int(rng.integers(62, 71)), []
        for t in range(length):
            u = rng.uniform()
            if t == 0 or u < p_note:
                if t:
                    d = int(rng.choice([1, 2])) if rng.uniform() < p_step else int(rng.choice([3, 4, 5, 7]))
                    up = pitch + d <= 72 and (rng.uniform() < 0.5 or pitch - d < 60)
                    pitch = pitch + d if up else max(pitch - d, 60)
                row.append(idx[str(pitch)])
            elif u < p_note + p_rest * (1 - p_note):
                row.append(idx["r"])
            else:
                row.append(idx["_"])
        out.append(row)
    return torch.tensor(out)


def _code_spearman(m, ids):
    m.eval()
    with torch.no_grad():
        mu, _ = m.encode(ids)
    a = phrase_attributes(ids.numpy(), PT, 4, VOCAB.index("r"), VOCAB.index("_"))
    m.train()
    return np.array([spearman(mu[:, k].numpy(), a[:, k]) for k in range(len(ATTRIBUTES))])


def test_short_training_orders_the_latent_dimensions_by_the_attributes():
    torch.manual_seed(0)
    data, held = _phrases(256, seed=0), _phrases(128, seed=1)
    m = MelodyVAE(len(VOCAB), phrase_len=16, steps_per_bar=4, embed_dim=8, enc_hidden=32, dec_hidden=32,
                  latent_dim=8, free_bits=4.0, kl_warmup_steps=0, attr_reg=1.0, attr_reg_delta=10.0, vocab=VOCAB)
    before = _code_spearman(m, held)
    opt = torch.optim.Adam(m.parameters(), 0.01)
    g = torch.Generator().manual_seed(0)
    ar = []
    for step in range(150):
        batch = {"tokens": data[torch.randint(0, len(data), (32,), generator=g)]}
        out = m(batch, step=step)
        opt.zero_grad(); out["loss"].backward(); opt.step()
        ar.append(float(out["attr"]))
    after = _code_spearman(m, held)
    assert np.mean(ar[-20:]) < 0.5 * np.mean(ar[:20])          # the regulariser falls
    # on phrases it was not trained on, each dimension now follows its attribute (before: |rho| < 0.35;
    # after 150 steps density, height and rests > 0.9, range and stepwise motion, which need more steps, lower)
    assert (after > before + 0.15).all(), (before, after)
    assert after.mean() > 0.6 and sorted(after)[2] > 0.8, after


def test_ar_sliders_move_the_attribute_dimension_and_flat_behaviour_is_unchanged():
    torch.manual_seed(0)
    codes = np.random.default_rng(0).normal(size=(300, 8)) * np.arange(1, 9)
    attrs = np.stack([codes[:, k] for k in range(5)], 1)
    m = MelodyVAE(len(VOCAB), phrase_len=16, steps_per_bar=4, embed_dim=8, enc_hidden=16, dec_hidden=16,
                  latent_dim=8, n_sliders=3, attr_reg=1.0, vocab=VOCAB).eval()
    m.fit_sliders(codes)
    info = m.fit_attributes(codes, attrs)
    assert [info[a]["latent_dim"] for a in ATTRIBUTES] == [0, 1, 2, 3, 4]
    assert info["pitch_range"]["spearman_code"] == pytest.approx(1.0)
    # the range slider moves dimension 2 only, in units of that dimension's spread
    z = m.slider_z(None, 1, {"pitch_range": 2.0}) - m.slider_z(None)
    want = torch.zeros(8)
    want[2] = 2.0 * codes[:, 2].std()
    assert torch.allclose(z[0], want, atol=1e-4)
    # attr_reg = 0: the top-minus-bottom quartile vector as before (not a single dimension)
    m0 = MelodyVAE(len(VOCAB), phrase_len=16, steps_per_bar=4, embed_dim=8, enc_hidden=16, dec_hidden=16,
                   latent_dim=8, n_sliders=3).eval()
    mixed = np.stack([codes[:, 0] + codes[:, 5]] * 5, 1)
    m0.fit_attributes(codes, mixed)
    assert float(m0.attr_dirs[0, 5]) > 0.5 and "attr" not in m0({"tokens": _phrases(4)})


@pytest.mark.parametrize("line,msg", [("attr_reg = -1.0", "attr_reg must be a number >= 0"),
                                      ("attr_reg_delta = 0.0", "attr_reg_delta must be a number > 0"),
                                      ("attr_reg = \"on\"", "attr_reg must be a number"),
                                      ("attr_code_dropout = 1.0", "attr_code_dropout must be in")])
def test_config_ranges(tmp_path, line, msg):
    from tunesmith.config import load_config

    p = tmp_path / "bad.toml"
    p.write_text(textwrap.dedent(f"""
        name = "bad"
        [data]
        encoding = "melody_phrases"
        dataset = "essen-small"
        [model]
        name = "melody_vae"
        {line}
        [train]
        max_steps = 1
    """))
    with pytest.raises(TunesmithError, match=msg):
        load_config(p)


def test_attr_reg_needs_the_vocabulary_and_five_dimensions():
    with pytest.raises(TunesmithError, match="vocabulary"):
        MelodyVAE(len(VOCAB), attr_reg=1.0)
    with pytest.raises(TunesmithError, match="latent_dim >= 5"):
        MelodyVAE(len(VOCAB), latent_dim=4, attr_reg=1.0, vocab=VOCAB)


def test_attr_code_dropout_decodes_some_items_from_the_attribute_dimensions_alone():
    torch.manual_seed(0)
    m = MelodyVAE(len(VOCAB), phrase_len=16, steps_per_bar=4, embed_dim=8, enc_hidden=16, dec_hidden=16, latent_dim=8,
                  init_logvar=-30.0, attr_reg=1.0, attr_code_dropout=0.5, vocab=VOCAB)
    seen = []
    real = m.decode_logits
    m.decode_logits = lambda z, ids, *labels: (seen.append(z), real(z, ids, *labels))[1]
    ids = _phrases(64)
    m(({"tokens": ids}))
    mu, _ = m.encode(ids)
    zg, z = seen[-1], seen[-1].detach()
    assert torch.allclose(z[:, :5], mu[:, :5].detach(), atol=1e-3)      # the attribute dimensions always pass
    replaced = ~torch.isclose(z[:, 5:], mu[:, 5:].detach(), atol=1e-3).all(1)
    assert 15 <= int(replaced.sum()) <= 49                                # about half the items: set to 0
    assert float(z[replaced][:, 5:].abs().max()) == 0.0
    # the replaced items train the decoder only: no gradient reaches the encoder through their attribute dims
    grad = lambda rows: torch.autograd.grad(zg[rows, :5].sum(), m.to_latent.weight, retain_graph=True,
                                            allow_unused=True)[0]
    assert grad(replaced) is None or float(grad(replaced).abs().sum()) == 0.0
    assert float(grad(~replaced).abs().sum()) > 0
    m.eval()
    m(({"tokens": ids}))
    assert torch.allclose(seen[-1].detach(), mu.detach())                 # never at evaluation
    with pytest.raises(TunesmithError, match="needs model.attr_reg > 0 or model.attr_condition"):
        MelodyVAE(len(VOCAB), attr_code_dropout=0.1, vocab=VOCAB)


def test_gpu_sweep_variant_config_changes_only_the_named_keys(tmp_path):
    # scripts/melody_vae_gpu_sweep.py writes one config per variant by replacing `key = value` lines
    import importlib.util
    from pathlib import Path

    from tunesmith.config import load_config

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("sweep", root / "scripts" / "melody_vae_gpu_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    base_path = root / "configs" / "melody_vae_4bar_ar_lrdecay.toml"
    text = sweep.variant_config(base_path.read_text(), "v_test", {"free_bits": "192.0", "attr_code_dropout": "0.2",
                                                                  "lr_decay_every": "18000"})
    (tmp_path / "v.toml").write_text(text)
    cfg, base = load_config(tmp_path / "v.toml"), load_config(base_path)
    assert cfg.name == "v_test" and cfg.model["name"] == "melody_vae"   # only the first `name =` line changes
    assert cfg.model["free_bits"] == 192.0 and cfg.model["attr_code_dropout"] == 0.2
    assert cfg.train.lr_decay_every == 18000
    others = {k: v for k, v in cfg.model.items() if k not in ("free_bits", "attr_code_dropout")}
    assert others == {k: v for k, v in base.model.items() if k not in ("free_bits", "attr_code_dropout")}
    assert cfg.data == base.data and cfg.train.max_steps == base.train.max_steps
    with pytest.raises(SystemExit, match="occurs 0 times"):
        sweep.variant_config(base_path.read_text(), "v", {"no_such_key": "1"})
