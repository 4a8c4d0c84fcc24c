"""Attribute-conditioned melody VAE (``model.attr_condition``): the decoder reads the phrase's five attributes
next to z, so an attribute slider sets a number the decoder was trained to follow instead of a direction in z.
The code by hand, the sliders' reach, the attributes' prior given z, a short training whose decoder follows
its density input, and the config checks."""
import numpy as np
import pytest
import torch

from tunesmith.errors import TunesmithError
from tunesmith.models.melody_vae import ATTR_CENTRE, ATTR_SCALE, ATTRIBUTES, MelodyVAE, phrase_attributes, spearman

from test_melody_vae_ar import PT, VOCAB, _phrases

K = len(ATTRIBUTES)


def _model(**kw):
    args = dict(phrase_len=16, steps_per_bar=4, embed_dim=8, enc_hidden=16, dec_hidden=32, latent_dim=6,
                n_sliders=4, free_bits=2.0, kl_warmup_steps=0, attr_condition=True, vocab=VOCAB)
    args.update(kw)
    return MelodyVAE(len(VOCAB), **args)


def _attrs(ids):
    return phrase_attributes(np.asarray(ids), PT, 4, VOCAB.index("r"), VOCAB.index("_"))


def test_the_code_is_z_then_the_normalised_attributes_and_the_kl_is_z_s():
    torch.manual_seed(0)
    m = _model(decoder="hierarchical", encoder_pool="bars")
    ids = _phrases(8)
    mu, logvar = m.encode(ids)
    assert m.z_dim == 6 and m.latent_dim == 6 + K and mu.shape == (8, 6 + K)
    want = (_attrs(ids) - ATTR_CENTRE) / ATTR_SCALE
    assert np.allclose(mu[:, 6:].detach().numpy(), want, atol=1e-5)
    # e.g. phrase 0 by hand: its note count / 4 bars is the density
    n_notes = int(sum(1 for i in ids[0].tolist() if VOCAB[i].isdigit()))
    assert float(mu[0, 6].detach()) == pytest.approx((n_notes / 4 - 4.8) / 1.5, abs=1e-5)
    seen = []
    real = m.decode_logits
    m.decode_logits = lambda z, x, *rest: (seen.append(z.detach()), real(z, x, *rest))[1]
    out = m({"tokens": ids})
    # training: the attribute inputs reach the decoder exactly (no sampling noise), z is sampled
    assert torch.equal(seen[-1][:, 6:], mu[:, 6:].detach())
    assert not torch.allclose(seen[-1][:, :6], mu[:, :6].detach(), atol=1e-3)
    kl_z = -0.5 * (1 + logvar[:, :6] - mu[:, :6].pow(2) - logvar[:, :6].exp()).sum(1).mean()
    assert float(out["kl"]) == pytest.approx(float(kl_z), rel=1e-5)


def test_sliders_reach_and_the_prior_of_the_attributes_given_z():
    torch.manual_seed(0)
    m = _model().eval()
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 6)) * 3.0           # wide z dims: the latent sliders would pick them first anyway
    a = np.stack([0.5 * z[:, 0] + 0.1 * rng.normal(size=400)] + [rng.normal(size=400) * 10 for _ in range(K - 1)], 1)
    codes = np.concatenate([z, a], 1)
    latent_only = codes.copy()
    latent_only[:, 6:] = codes[:, 6:].mean(0)
    m.fit_sliders(latent_only)
    info = m.fit_attributes(codes, a)
    assert all(int(d) < 6 for d in m.slider_dims)                         # latent sliders: z's dimensions only
    assert [info[n]["latent_dim"] for n in ATTRIBUTES] == [6, 7, 8, 9, 10]
    # the density slider moves code dimension 6, in units of its spread, and stops at the 99.5 % quantile
    lo, hi = np.quantile(a[:, 0], [0.005, 0.995])
    d = m.slider_z(None, 1, {"note_density": 1.0}) - m.slider_z(None)
    assert float(d[0, 6]) == pytest.approx(a[:, 0].std(), rel=1e-4) and float(d[0, :6].abs().max()) == 0
    sweep = m.move_attribute(m.slider_z(None), 0, np.linspace(-30, 30, 7))[:, 6].numpy()
    assert sweep.min() == pytest.approx(lo, abs=1e-4) and sweep.max() == pytest.approx(hi, abs=1e-4)
    assert float(m.slider_z(None, 1, {"note_density": 30.0})[0, 6]) == pytest.approx(hi, abs=1e-4)
    # prior: z from N(0, I), the attributes from the bank of training phrases' attributes
    assert np.allclose(np.sort(m.attr_bank[:, 1].numpy()), np.sort(a[np.linspace(0, 399, 1024).round().astype(int), 1]))
    p = m.prior_codes(3000, torch.Generator().manual_seed(1))
    assert p.shape == (3000, 6 + K)
    assert abs(float(p[:, :6].std()) - 1.0) < 0.05
    drawn = np.unique(p[:, 7].numpy())
    gap = np.abs(drawn[:, None] - a[None, :, 1]).min(1)
    assert gap.max() < 1e-4 and len(drawn) > 250        # real training attributes, many of them


def test_short_training_the_decoder_follows_its_density_input():
    torch.manual_seed(0)
    data = _phrases(512, seed=0)
    m = _model(latent_dim=4, dec_hidden=48, word_dropout=0.3)
    opt = torch.optim.Adam(m.parameters(), 0.01)
    g = torch.Generator().manual_seed(0)
    for step in range(300):
        out = m({"tokens": data[torch.randint(0, len(data), (64,), generator=g)]}, step=step)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    m.eval()
    codes, a = m.encode(data)[0].detach().numpy(), _attrs(data)
    latent_only = codes.copy()
    latent_only[:, 4:] = codes[:, 4:].mean(0)
    m.fit_sliders(latent_only)
    m.fit_attributes(codes, a)
    values = np.linspace(-3, 3, 13)
    got = _attrs(m.decode_ids(m.move_attribute(m.slider_z(None), 0, values)).numpy())[:, 0]
    assert spearman(values, got) >= 0.8, got
    assert got[-1] - got[0] >= 1.5, got        # notes per bar: from sparse to dense


def test_needs_the_vocabulary_no_labels_and_no_attr_reg():
    with pytest.raises(TunesmithError, match="set one of them"):
        MelodyVAE(len(VOCAB), attr_condition=True, attr_reg=1.0, vocab=VOCAB)
    with pytest.raises(TunesmithError, match="attr_condition needs the codec's vocabulary"):
        MelodyVAE(len(VOCAB), attr_condition=True)
    with pytest.raises(TunesmithError, match="does not combine with condition labels"):
        MelodyVAE(len(VOCAB), attr_condition=True, vocab=VOCAB, label_groups={"metre": [0]})
