"""Melody VAE: phrases, augmentation, attributes, the model, reconstruction, the zoo export and the web API."""
import json
import textwrap

import numpy as np
import pytest
import torch

from tunesmith.data.melody_phrases import PhraseCodec, PhraseData, cut_phrases, fold_octaves
from tunesmith.data.notes import Score
from tunesmith.models.melody_vae import ATTRIBUTES, MelodyVAE, phrase_attributes, spearman
from tunesmith.sampling.reconstruct import onset_f1_counts

VOCAB = ["/", "_", "r"] + [str(p) for p in range(60, 73)]

TINY_VAE = """
name = "tiny_vae"
[data]
encoding = "melody_phrases"
dataset = "essen-small"
bars = 1
steps_per_bar = 16
augment = [-1, 0, 1]
val_fraction = 0.2
[model]
name = "melody_vae"
embed_dim = 8
enc_hidden = 32
dec_hidden = 48
latent_dim = 8
n_sliders = 4
free_bits = 4.0
kl_warmup_steps = 20
slider_items = 256
[train]
max_steps = 40
batch_size = 16
lr = 0.005
log_every = 10
val_every = 40
checkpoint_every = 1000
seed = 0
num_threads = 1
"""


def codec(length=8):
    return PhraseCodec(VOCAB, 0.25, length, steps_per_bar=4)


def test_phrases_start_with_the_sounding_note_and_pad_with_a_rest():
    syms = "60 _ _ _ 62 _ r _ 64 _ _".split()
    ph = cut_phrases(syms, 4, 4)
    # the third phrase starts inside the held 64 -> begins with 64; the tail (3 of 4 steps) is padded with a rest
    assert ph == [["60", "_", "_", "_"], ["62", "_", "r", "_"], ["64", "_", "_", "r"]]
    # overlapping windows: the one starting at step 2 is inside the held 60
    assert cut_phrases(syms, 4, 2)[1] == ["60", "_", "62", "_"]
    assert cut_phrases(syms[:2], 4, 4) == [["60", "_", "r", "_"]]  # shorter than a phrase: padded
    assert cut_phrases(syms[:5], 4, 4) == [["60", "_", "_", "_"]]  # a 1-step tail (< half) is dropped


def test_codec_round_trip_and_octave_folding():
    c = codec(8)
    sc = Score.from_notes([(60, 0, 0.5), (64, 0.5, 0.25), (67, 1.0, 1.0)])
    (ids,) = c.phrases(sc)
    back = c.decode(ids)
    assert back.notes() == sc.notes()
    assert fold_octaves(["48", "_", "85", "r"], VOCAB) == ["60", "_", "61", "r"]
    assert json.loads(json.dumps(c.state())) == PhraseCodec.from_state(c.state()).state()


def test_augmentation_shifts_pitches_and_skips_shifts_that_leave_the_vocabulary():
    c = codec(4)
    ph = np.array([c.encode("60 _ 62 _".split()), c.encode("70 72 r _".split())])
    d = PhraseData(ph, c, augment=[-1, 0, 2])
    items = [tuple(c.vocab[i] for i in row) for row in d.batch(torch.arange(len(d)))["tokens"].tolist()]
    # 60-1 = 59 and 72+2 = 74 are not in the vocabulary: those two items do not exist
    assert sorted(items) == sorted([("62", "_", "64", "_"), ("60", "_", "62", "_"), ("70", "72", "r", "_"),
                                    ("69", "71", "r", "_")])


def test_attributes_by_hand():
    c = codec(8)
    ids = np.array([c.encode("60 _ 62 _ 64 r _ _".split()), c.encode("_ _ 72 _ _ _ 60 _".split())])
    a = phrase_attributes(ids, c.pitch_table(), 4, c.index["r"], c.index["_"])
    # phrase 1: 3 notes in 2 bars; mean 62; range 4; both steps are 2 semitones; rests 3 of 8 steps
    np.testing.assert_allclose(a[0], [1.5, 62, 4, 1.0, 3 / 8])
    # phrase 2: leading holds count as rest (2 of 8); one leap of 12
    np.testing.assert_allclose(a[1], [1.0, 66, 12, 0.0, 2 / 8])
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0


def test_onset_f1_counts_match_pitch_and_step():
    c = codec(8)
    a = np.array([c.encode("60 _ 62 _ 64 _ _ _".split())])
    b = np.array([c.encode("60 _ _ 62 64 _ 65 _".split())])
    assert onset_f1_counts(a, b, c.pitch_table()) == (2, 3, 4)  # 60@0 and 64@4 match; 62 moved


@pytest.mark.parametrize("decoder,pool", [("flat", "last"), ("hierarchical", "bars")])
def test_model_learns_a_batch_and_decodes_phrases(decoder, pool):
    torch.manual_seed(0)
    c = codec(8)
    m = MelodyVAE(len(VOCAB), phrase_len=8, steps_per_bar=4, embed_dim=8, enc_hidden=16, dec_hidden=32, latent_dim=4,
                  decoder=decoder, conductor_hidden=16, free_bits=0.0, beta=0.01, kl_warmup_steps=0, n_sliders=3,
                  encoder_pool=pool, init_logvar=-4.0)
    batch = {"tokens": torch.tensor([c.encode(s.split()) for s in
                                     ("60 _ 62 _ 64 _ 65 _", "72 _ _ _ 71 _ 69 _", "64 r 64 r 67 _ _ _")])}
    opt = torch.optim.Adam(m.parameters(), 0.03)
    first = None
    for step in range(80):
        out = m(batch, step=step)
        opt.zero_grad(); out["loss"].backward(); opt.step()
        first = first if first is not None else float(out["recon"].detach())
    m.eval()
    with torch.no_grad():
        assert float(m(batch)["recon"]) < 0.2 * first
    mu, _ = m.encode(batch["tokens"])
    assert torch.equal(m.decode_ids(mu), batch["tokens"])   # reconstructs the phrases it learnt
    assert m.decode_ids(torch.zeros(5, 4), temperature=1.0).shape == (5, 8)
    z = torch.randn(6, 4)
    fast = m.decode_ids(z)
    m.fast_decode = False                                     # the plain-tensor step equals nn.LSTM's
    assert torch.equal(fast, m.decode_ids(z))



@pytest.mark.parametrize("decoder", ["flat", "hierarchical"])
def test_beam_search_finds_the_most_likely_phrase(decoder):
    """Beam search with V^(L-1) hypotheses is exhaustive: it must return the phrase of highest teacher-forced
    log-likelihood among all V^L (5 symbols, 4 steps: 625 phrases scored one by one); beam 1 is argmax."""
    import itertools

    torch.manual_seed(1)
    V, L = 5, 4
    m = MelodyVAE(V, phrase_len=L, steps_per_bar=2, embed_dim=4, enc_hidden=4, dec_hidden=8, latent_dim=3,
                  decoder=decoder, conductor_hidden=4).eval()
    with torch.no_grad():
        m.head.weight.mul_(3.0)                       # a history-dependent distribution, not too flat
    z = torch.randn(12, 3)
    every = torch.tensor(list(itertools.product(range(V), repeat=L)))
    with torch.no_grad():
        best = []
        for zi in z:
            lp = torch.log_softmax(m.decode_logits(zi.expand(len(every), -1), every), -1)
            score = lp.gather(2, every[:, :, None])[:, :, 0].sum(1)
            best.append(every[score.argmax()])
    assert torch.equal(m.decode_beam(z, V ** (L - 1)), torch.stack(best))
    assert torch.equal(m.decode_beam(z, 1), m.decode_ids(z))
    greedy = m.decode_ids(z)
    assert not all(torch.equal(g, b) for g, b in zip(greedy, best)), "the test needs a case where argmax is not the best"
    with pytest.raises(Exception, match="beam"):
        m.decode_beam(z, 0)

@pytest.mark.parametrize("decoder", ["flat", "hierarchical"])
def test_decoding_records_no_autograd_graph(decoder):
    """decode_ids (sliders, prior samples, --reconstruct, the zoo figures) runs without autograd, whoever calls
    it: every output projection it makes is computed with gradients off."""
    m = MelodyVAE(5, phrase_len=4, steps_per_bar=2, embed_dim=4, enc_hidden=4, dec_hidden=8, latent_dim=3,
                  decoder=decoder, conductor_hidden=4).eval()
    seen = []
    m.head.register_forward_hook(lambda mod, inp, out: seen.append(out.requires_grad))
    m.decode_ids(torch.randn(2, 3))
    m.decode_ids(torch.randn(2, 3), temperature=0.7)
    assert seen and not any(seen)


def test_sliders_attributes_and_interpolation_endpoints():
    torch.manual_seed(0)
    c = codec(8)
    m = MelodyVAE(len(VOCAB), phrase_len=8, steps_per_bar=4, embed_dim=8, enc_hidden=16, dec_hidden=32, latent_dim=6,
                  n_sliders=3).eval()
    codes = np.random.default_rng(0).normal(size=(200, 6))
    attrs = np.stack([codes[:, 0], -codes[:, 1], codes[:, 2], codes[:, 3], codes[:, 4]], 1)
    m.fit_sliders(codes)
    m.fit_attributes(codes, attrs)
    # the attribute vector of "pitch height" (= -code dim 1 here) points along -e1
    assert float(m.attr_dirs[1, 1]) < -0.9
    z = m.slider_z([0, 0, 0], 1, {"pitch_height": 2.0}) - m.slider_z([0, 0, 0])
    assert torch.allclose(z[0], 2.0 * m.attr_scale[1] * m.attr_dirs[1], atol=1e-6)
    with pytest.raises(Exception, match="unknown attribute"):
        m.slider_z(None, 1, {"loudness": 1})
    a = Score.from_notes([(60, 0, 0.5), (62, 0.5, 0.5)])
    b = Score.from_notes([(67, 0, 1.0), (65, 1.0, 1.0)])
    out = m.generate(c, 3, interpolate=(a, b))
    za, zb = m.encode_score(c, a), m.encode_score(c, b)
    assert [s.notes() for s in (out[0], out[-1])] == [c.decode(m.decode_ids(z[None])[0]).notes() for z in (za, zb)]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from tunesmith.training import train

    d = tmp_path_factory.mktemp("mvae")
    cfg = d / "tiny_vae.toml"
    cfg.write_text(textwrap.dedent(TINY_VAE))
    train(cfg, d / "run", device="cpu", progress=False)
    return d / "run"


def test_training_writes_sliders_and_attributes(vae_run):
    info = json.loads((vae_run / "sliders.json").read_text())
    assert set(info["attributes"]) == set(ATTRIBUTES)
    rows = [l.split(",") for l in (vae_run / "metrics.csv").read_text().splitlines()[1:]]
    recon = [float(r[4]) for r in rows if r[2] == "train" and r[3] == "recon"]
    assert recon[-1] < recon[0]


def test_reconstruct_command_writes_midi_and_figures(vae_run, tmp_path):
    from tunesmith.cli import main

    out = tmp_path / "rec"
    assert main(["sample", str(vae_run), "--reconstruct", "essen-small:val", "--out", str(out)]) == 0
    res = json.loads((out / "reconstruction.json").read_text())
    assert res["n_phrases"] == len(list((out / "reconstructed").glob("*.mid"))) == len(list((out / "original").glob("*.mid")))
    assert 0 <= res["onset_f1"] <= 1 and 0 < res["token_accuracy"] <= 1
    assert main(["sample", str(vae_run), "--reconstruct", "no-such-set", "--out", str(out)]) == 1


def test_zoo_export_is_float16_and_loads(vae_run, tmp_path):
    from safetensors.torch import load_file

    from tunesmith.training import load_run
    from tunesmith.zoo import export

    card = dict(title="t", description="d", family="melody_vae", data="x", split="y", command="c", steps=40,
                wall_time_s=1.0, hardware="h", figures={"onset_f1": 0.5}, weaknesses=["w"])
    out = export(vae_run, "tiny", card, dest=tmp_path / "tiny")
    assert not (out / "checkpoint" / "trainer.pt").exists()
    w = load_file(str(out / "checkpoint" / "model.safetensors"))
    assert w["head.weight"].dtype == torch.float16 and w["slider_dims"].dtype == torch.int64
    m, c, _, _ = load_run(out)
    m32, _, _, _ = load_run(vae_run)
    z = torch.zeros(2, m.latent_dim)
    assert torch.equal(m.decode_ids(z), m32.decode_ids(z))   # half precision decodes the same phrases here
    assert json.loads((out / "card.json").read_text())["figures"] == {"onset_f1": 0.5}
    with pytest.raises(Exception, match="lacks"):
        export(vae_run, "tiny", {"title": "t"}, dest=tmp_path / "x")


def test_web_api_attributes_and_interpolation(vae_run):
    from fastapi.testclient import TestClient

    from tunesmith.serve.app import create_app

    client = TestClient(create_app([str(vae_run)]))
    (m,) = client.get("/api/models").json()
    assert m["kind"] == "vae" and [a["name"] for a in m["attributes"]] == list(ATTRIBUTES) and m["interpolate"]
    r = client.post("/api/generate", json={"model": m["name"], "sliders": [0.5, 0, 0, 0]})
    assert r.status_code == 200
    r = client.post("/api/melody-vae/decode", json={"model": m["name"], "sliders": [0.5], "attributes": {"rests": 2}})
    assert r.status_code == 200 and r.json()["length"] > 0
    assert client.post("/api/melody-vae/decode", json={"model": m["name"], "attributes": {"x": 1}}).status_code == 422
    assert client.post("/api/melody-vae/decode", json={"model": m["name"], "attributes": {"rests": 9}}).status_code == 422
    songs = client.get("/api/melody-vae/songs", params={"model": m["name"]}).json()
    assert len(songs) >= 2
    notes = [{"p": 60, "s": 0, "d": 1}, {"p": 64, "s": 1, "d": 1}]
    r0 = client.post("/api/melody-vae/interpolate", json={"model": m["name"], "a": {"song": 0}, "b": {"notes": notes}, "t": 0})
    r1 = client.post("/api/melody-vae/interpolate", json={"model": m["name"], "a": {"song": 1}, "b": {"song": 0}, "t": 1})
    assert r0.status_code == r1.status_code == 200 and r0.json()["notes"] == r1.json()["notes"]
    bad = client.post("/api/melody-vae/interpolate", json={"model": m["name"], "a": {"song": 0}, "b": {}, "t": 0.5})
    assert bad.status_code == 422


def test_serve_without_runs_loads_every_zoo_model(monkeypatch):
    import tunesmith.serve.app as app_mod
    from tunesmith import zoo
    from tunesmith.cli import main

    got = []
    monkeypatch.setattr(app_mod, "serve", lambda runs, host, port: got.append(runs))
    monkeypatch.setattr(zoo, "names", lambda: ["audio-cvae", "essen-lstm", "melody-vae-4bar", "new-model"])
    assert main(["serve"]) == 0
    # the page opens on the first: the melody VAE (not the audio model that sorts first by name)
    assert got == [["zoo:melody-vae-4bar", "zoo:essen-lstm", "zoo:audio-cvae", "zoo:new-model"]]
    monkeypatch.setattr(zoo, "names", lambda: [])
    assert main(["serve"]) == 1
