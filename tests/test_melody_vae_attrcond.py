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


def _r2(codes, a):
    """Share of each attribute's variance a least-squares fit explains from the codes."""
    X = np.concatenate([codes, np.ones((len(codes), 1))], 1)
    coef, *_ = np.linalg.lstsq(X, a, rcond=None)
    return 1 - ((a - X @ coef) ** 2).mean(0) / a.var(0)


def test_attribute_adversary_keeps_the_attributes_out_of_z():
    data = _phrases(512, seed=0)
    a = (_attrs(data) - ATTR_CENTRE) / ATTR_SCALE
    r2 = {}
    for weight in (0.0, 4.0):
        torch.manual_seed(0)
        m = _model(latent_dim=4, free_bits=8.0, attr_adversary=weight)
        opt = torch.optim.Adam(m.parameters(), 0.01)
        g = torch.Generator().manual_seed(0)
        enc = []
        for step in range(250):
            out = m({"tokens": data[torch.randint(0, len(data), (64,), generator=g)]}, step=step)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            if weight:
                enc.append(float(out["attr_adv_enc"]))
        m.eval()
        with torch.no_grad():
            r2[weight] = _r2(m.encode(data)[0][:, :4].numpy(), a)
        if weight:
            assert "attr_adv" not in m({"tokens": data[:4]})          # training only
            assert max(enc) > 0                                          # the penalty acted
    # without the adversary z carries the attributes (linearly), with it much less of them
    assert r2[0.0].mean() > 0.12 and r2[4.0].mean() < 0.5 * r2[0.0].mean(), r2   # (0.17 and 0.04 when written)


def test_attribute_adversary_losses_by_hand():
    m = _model(latent_dim=4, attr_adversary=1.0)
    mu = torch.randn(16, 4)
    attrs = torch.randn(16, K)
    fit, enc = m.attr_adversary_losses(mu, attrs)
    pred = m.attr_adv(mu)
    assert float(fit) == pytest.approx(float(((pred - attrs) ** 2).mean(0).sum()), rel=1e-5)
    share = 1 - ((pred - attrs) ** 2).mean(0) / attrs.var(0, unbiased=False)
    assert float(enc) == pytest.approx(float(share.clamp(min=0).sum()), rel=1e-5, abs=1e-6)
    with pytest.raises(TunesmithError, match="attr_adversary needs model.attr_condition"):
        MelodyVAE(len(VOCAB), attr_adversary=1.0, vocab=VOCAB)
    with pytest.raises(TunesmithError, match="attr_adversary must be a number >= 0"):
        _model(attr_adversary=-1.0)


@pytest.fixture(scope="module")
def attr_run(tmp_path_factory):
    from test_melody_vae import TINY_VAE

    from tunesmith.training import train

    d = tmp_path_factory.mktemp("attr")
    cfg = d / "tiny_attr.toml"
    cfg.write_text(TINY_VAE.replace("slider_items = 256", "slider_items = 256\nattr_condition = true\n"
                                    "attr_code_dropout = 0.2"))
    train(cfg, d / "run", device="cpu", progress=False)
    return d / "run"


def test_a_trained_run_end_to_end(attr_run, tmp_path):
    import json

    from fastapi.testclient import TestClient

    from tunesmith.cli import main
    from tunesmith.serve.app import create_app
    from tunesmith.training import load_run

    m, c, _, _ = load_run(attr_run)
    info = json.loads((attr_run / "sliders.json").read_text())
    # attr_code_dropout: the sliders start at z = 0 with the training phrases' mean attributes
    assert info["centre"].startswith("z = 0") and float(m.latent_mean[:m.z_dim].abs().max()) == 0.0
    assert [info["attributes"][a]["latent_dim"] for a in ATTRIBUTES] == list(range(m.z_dim, m.z_dim + K))
    assert float(m.attr_bank.abs().sum()) > 0 and bool((m.attr_lo < m.attr_hi).all())
    # the command line: prior samples, reconstruction (the code carries the phrase's own attributes)
    assert main(["sample", str(attr_run), "--num", "3", "--seed", "0", "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s").glob("*.mid"))) == 3
    assert main(["sample", str(attr_run), "--reconstruct", "essen-small:val", "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "reconstruction.json").read_text())["n_phrases"] > 0
    # an attribute slider past the training phrases' reach decodes what the reach's edge decodes
    edge = float((m.attr_hi[0] - m.latent_mean[m.z_dim]) / m.attr_scale[0]) + 0.01
    assert torch.equal(m.decode(m.slider_z(None, 1, {"note_density": 25.0})),
                       m.decode(m.slider_z(None, 1, {"note_density": edge})))
    # the web API: attribute sliders and interpolation
    client = TestClient(create_app([str(attr_run)]))
    (e,) = client.get("/api/models").json()
    r = client.post("/api/melody-vae/decode", json={"model": e["name"], "attributes": {"note_density": 3}})
    assert r.status_code == 200 and r.json()["length"] > 0
    r = client.post("/api/melody-vae/interpolate", json={"model": e["name"], "a": {"song": 0}, "b": {"song": 1}, "t": 0.5})
    assert r.status_code == 200


def test_slider_positions_decode_by_a_seeded_draw():
    torch.manual_seed(0)
    m = _model(slider_temperature=0.5, slider_seed=3).eval()
    z = torch.randn(4, m.latent_dim)
    batch = m.decode(z)
    # the same noise for every row: a batch decodes as its rows one at a time, and again the same
    assert torch.equal(batch, torch.cat([m.decode(z[i:i + 1]) for i in range(4)]))
    assert torch.equal(batch, m.decode(z))
    assert torch.equal(m.decode(z[:1].repeat(3, 1)), batch[:1].repeat(3, 1))
    # a draw, not argmax (an untrained model's argmax repeats one symbol; the draw varies)
    assert not torch.equal(batch, m.decode_ids(z))
    other = _model(slider_temperature=0.5, slider_seed=4).eval()
    other.load_state_dict(m.state_dict())
    assert not torch.equal(other.decode(z), batch)
    # slider_temperature 0: argmax, as before
    plain = _model().eval()
    plain.load_state_dict(m.state_dict())
    assert torch.equal(plain.decode(z), plain.decode_ids(z))
    with pytest.raises(TunesmithError, match="slider_temperature must be a number >= 0"):
        _model(slider_temperature=-0.5)


def test_steering_mixes_the_code_with_its_attributes_alone():
    """``slider_steer`` w: each step's logits are (1 - w) l(z, a) + w l(0, a), the two decoders reading the same
    symbols; teacher-forced logits of the steered phrase give back its argmax symbols."""
    torch.manual_seed(0)
    m = _model(decoder="hierarchical", encoder_pool="bars").eval()
    z = torch.randn(3, m.latent_dim)
    codes = m.steering_codes(z)
    assert codes.shape == (6, m.latent_dim) and torch.equal(codes[:3], z)
    assert not codes[3:, :6].any() and torch.equal(codes[3:, 6:], z[:, 6:])
    out = m.decode_ids(z, steer=0.7)
    with torch.no_grad():
        own, alone = m.decode_logits(codes[:3], out), m.decode_logits(codes[3:], out)
    assert torch.equal((0.3 * own + 0.7 * alone).argmax(-1), out)
    assert not torch.equal(out, m.decode_ids(z))          # steering changed the phrases of this random model
    assert torch.equal(m.decode_ids(z, steer=0.0), m.decode_ids(z))
    # with z = 0 the two decoders agree: steering changes nothing, whatever the attributes
    at_zero = torch.cat([torch.zeros(3, 6), z[:, 6:]], 1)
    assert torch.equal(m.decode_ids(at_zero, steer=0.7), m.decode_ids(at_zero))
    # decode() (the web page's) steers a slider position by model.slider_steer, with its seeded draw; not a real
    # melody's code (slider=False)
    s = _model(decoder="hierarchical", encoder_pool="bars", slider_temperature=0.5, slider_seed=3,
               slider_steer=0.7).eval()
    s.load_state_dict(m.state_dict())
    draw = lambda w: s.decode_ids(z, 0.5, torch.Generator().manual_seed(3), shared_noise=True, steer=w)  # noqa: E731
    assert torch.equal(s.decode(z), draw(0.7)) and torch.equal(s.decode(z, slider=False), draw(0.0))


def test_steering_needs_attribute_inputs_and_a_weight_up_to_one():
    with pytest.raises(TunesmithError, match="slider_steer needs model.attr_condition"):
        _model(attr_condition=False, slider_steer=0.5)
    for bad in (-0.5, float("nan"), 1.5):
        with pytest.raises(TunesmithError, match="slider_steer must be a number from 0"):
            _model(slider_steer=bad)
    with pytest.raises(TunesmithError, match="a weight from 0 to 1"):
        _model().decode_ids(torch.zeros(1, 6 + K), steer=1.5)
    plain = _model(attr_condition=False).eval()
    with pytest.raises(TunesmithError, match="attribute steering needs a model trained with"):
        plain.decode_ids(torch.zeros(1, plain.latent_dim), steer=0.5)


def test_key_masks_keep_the_scale_the_phrase_fits_best():
    m = _model()
    ids = lambda pitches: torch.tensor([[VOCAB.index(str(p)) for p in pitches]])  # noqa: E731
    c_major = m.key_masks(ids([60, 62, 64, 65, 67, 69, 71, 72]))[0]
    allowed = {VOCAB[i] for i in range(len(VOCAB)) if c_major[i] == 0}
    # C major (= A natural minor) and A minor's raised leading tone G# (68)
    assert allowed == {"/", "_", "r", "60", "62", "64", "65", "67", "68", "69", "71", "72"}
    # D major (two sharps): F#, C# allowed, F and C not; B minor's leading tone A# (70) too
    d_major = m.key_masks(ids([62, 64, 66, 67, 69, 71, 61, 62]))[0]
    assert {VOCAB[i] for i in range(len(VOCAB)) if d_major[i] == 0} == {"/", "_", "r", "61", "62", "64", "66", "67",
                                                                         "69", "70", "71"}
    # one odd note in a C major phrase: the scale that holds the most notes wins, the odd note is masked
    odd = m.key_masks(ids([60, 64, 67, 72, 64, 60, 63, 60]))[0]
    assert odd[VOCAB.index("63")] == float("-inf") and odd[VOCAB.index("64")] == 0
    with pytest.raises(TunesmithError, match="key_lock needs the codec's vocabulary"):
        _model(attr_condition=False, vocab=None).key_masks(ids([60]))


def test_key_lock_draws_again_with_the_same_noise_inside_the_first_draws_scale():
    torch.manual_seed(0)
    m = _model(decoder="hierarchical", encoder_pool="bars").eval()
    z = torch.randn(6, m.latent_dim)
    free = m.decode_ids(z, 1.5, torch.Generator().manual_seed(4))
    locked = m.decode_ids(z, 1.5, torch.Generator().manual_seed(4), key_lock=True)
    assert torch.equal(locked, m.decode_ids(z, 1.5, torch.Generator().manual_seed(4), row_mask=m.key_masks(free)))
    assert not torch.equal(locked, free)          # this random model wanders out of key, the lock brings it back
    pitch = torch.as_tensor(PT)[locked]
    for row, mask in zip(pitch, m.key_masks(free)):
        assert all(mask[VOCAB.index(str(int(p)))] == 0 for p in row if p >= 0)
    # a first draw already in its key is kept (the masked draw would be the same): the argmax phrases in key
    plain = m.decode_ids(z)
    in_key = (m.key_masks(plain).gather(1, plain) == 0).all(1)
    assert in_key.any() and not in_key.all()
    assert torch.equal(m.decode_ids(z[in_key], key_lock=True), plain[in_key])
    assert torch.equal(m.decode_ids(z[in_key], row_mask=m.key_masks(plain[in_key])), plain[in_key])
    assert not torch.equal(m.decode_ids(z[~in_key], key_lock=True), plain[~in_key])
    # the generator's draws after a locked decoding are those after one decoding (its state is put back once)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    m.decode_ids(z, 1.5, g1, key_lock=True)
    m.decode_ids(z, 1.5, g2)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    # model.key_lock: prior samples and slider positions are locked, a real melody's code (slider=False) is not
    k = _model(decoder="hierarchical", encoder_pool="bars", key_lock=True).eval()
    k.load_state_dict(m.state_dict())
    assert torch.equal(k.decode(z), m.decode_ids(z, key_lock=True))
    assert torch.equal(k.decode(z, slider=False), m.decode_ids(z))


def test_steering_grows_as_an_attribute_slider_leaves_its_centre():
    """``slider_steer_from`` r: the weight is slider_steer x min(1, d / r), d the largest distance of an attribute
    from the sliders' centre in standard deviations; at the centre the code decodes as unsteered."""
    torch.manual_seed(0)
    m = _model(decoder="hierarchical", encoder_pool="bars", slider_steer=0.8, slider_steer_from=0.5).eval()
    m.latent_mean.copy_(torch.randn(m.latent_dim))
    m.attr_scale.copy_(torch.tensor([0.5, 1.0, 2.0, 1.0, 1.0]))
    z = torch.randn(3, m.latent_dim)
    z[:, 6:] = m.latent_mean[6:]
    z[1, 6 + 2] += 0.25 * 2.0            # range 0.25 sd from its centre: half the weight
    z[2, 6 + 0] -= 3 * 0.5               # density 3 sd away: the whole weight
    w = m.steering_weights(z, 0.8)
    assert torch.allclose(w[:, 0], torch.tensor([0.0, 0.4, 0.8]))
    out = m.decode_ids(z, steer=0.8)
    codes = m.steering_codes(z)
    with torch.no_grad():
        own, alone = m.decode_logits(codes[:3], out), m.decode_logits(codes[3:], out)
    assert torch.equal(((1 - w[:, :, None]) * own + w[:, :, None] * alone).argmax(-1), out)
    assert torch.equal(out[0], m.decode_ids(z[:1])[0])      # at the centre: as unsteered
    plain = _model(decoder="hierarchical", encoder_pool="bars", slider_steer=0.8).eval()
    assert plain.steering_weights(z, 0.8) == 0.8            # r = 0: the same weight everywhere
    for bad in (-1.0, float("inf")):
        with pytest.raises(TunesmithError, match="slider_steer_from must be a number from 0 to 10"):
            _model(slider_steer_from=bad)


def test_key_lock_without_a_generator_reuses_the_default_generators_noise():
    torch.manual_seed(0)
    m = _model(decoder="hierarchical", encoder_pool="bars").eval()
    z = torch.randn(6, m.latent_dim)
    torch.manual_seed(11)
    locked = m.decode_ids(z, 1.5, key_lock=True)
    after = torch.rand(2)
    torch.manual_seed(11)
    free = m.decode_ids(z, 1.5)
    assert torch.equal(torch.rand(2), after)           # one decoding's worth of draws, as with a generator
    torch.manual_seed(11)
    assert torch.equal(locked, m.decode_ids(z, 1.5, row_mask=m.key_masks(free)))
