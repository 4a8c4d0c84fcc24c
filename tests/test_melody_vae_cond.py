"""Melody VAE with metre/mode condition labels (issue 16 item 3; docs/conditioning.md "Melody VAE")."""
import textwrap

import numpy as np
import pytest
import torch

from tunesmith.data.base import build_data
from tunesmith.errors import TunesmithError
from tunesmith.models.melody_vae import MelodyVAE

from test_melody_vae import TINY_VAE, codec as plain_codec

TINY_COND = TINY_VAE.replace('val_fraction = 0.2\n', 'val_fraction = 0.2\ncondition = ["metre", "mode"]\n')


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    from tunesmith.training import train

    d = tmp_path_factory.mktemp("mvae_cond")
    cfg = d / "tiny_cond.toml"
    cfg.write_text(textwrap.dedent(TINY_COND))
    train(cfg, d / "run", device="cpu", progress=False)
    return d / "run"


def test_conditioned_phrases_carry_their_songs_labels_and_keep_the_note_ids():
    plain = build_data("melody_phrases", dataset="essen-small", bars=1, val_fraction=0.2)
    cond = build_data("melody_phrases", dataset="essen-small", bars=1, val_fraction=0.2, condition=["metre", "mode"])
    # the same phrases with the same ids: the labels join the vocabulary after the notes
    assert cond.codec.vocab[:len(plain.codec.vocab)] == plain.codec.vocab
    assert torch.equal(cond.train.phrases, plain.train.phrases) and torch.equal(cond.val.phrases, plain.val.phrases)
    assert plain.train.labels is None and "labels" not in plain.train.batch(torch.arange(4))
    b = cond.train.batch(torch.arange(len(cond.train)))
    kinds = list(cond.codec.label_groups)
    assert kinds == ["metre", "mode"] and b["labels"].shape == (len(cond.train), 2)
    for j, kind in enumerate(kinds):  # every label is a label token of its own kind
        assert set(b["labels"][:, j].tolist()) <= set(cond.codec.label_groups[kind])
    # training phrases start every bar (16 steps) of their song; validation phrases every phrase
    assert (b["since"] % 16 == 0).all() and (cond.val.since % 16 == 0).all()
    assert (b["since"] == 0).sum() >= 1


def test_tiny_conditioned_run_trains_reloads_and_samples_with_a_condition(cond_run, tmp_path, capsys):
    from tunesmith.cli import main
    from tunesmith.training import load_run

    rows = [l.split(",") for l in (cond_run / "metrics.csv").read_text().splitlines()[1:]]
    recon = [float(r[4]) for r in rows if r[2] == "train" and r[3] == "recon"]
    assert recon[-1] < recon[0]
    m, c, _, _ = load_run(cond_run)
    assert m.label_kinds == ["metre", "mode"] and "<metre=3/4>" in c.labels
    out = tmp_path / "s"
    assert main(["sample", str(cond_run), "--condition", "metre=3/4,mode=minor", "--num", "2",
                 "--out", str(out)]) == 0
    assert len(list(out.glob("*.mid"))) == 2
    assert main(["sample", str(cond_run), "--help-model"]) == 0
    assert "metre=3/4" in capsys.readouterr().out     # the condition control lists the labels


def test_labels_change_the_decoder_and_fast_decoding_matches_the_lstm(cond_run):
    from tunesmith.training import load_run

    m, c, _, _ = load_run(cond_run)
    z = torch.randn(6, m.latent_dim, generator=torch.Generator().manual_seed(0))
    ids = m.decode_ids(z)
    a, b = (m.condition_ids(c, x) for x in ("metre=3/4,mode=minor", "metre=4/4,mode=major"))

    def logits(lab):
        slots = m.label_slots(lab.expand(len(z), -1), len(z))
        return m.decode_logits(z, ids, m.label_vector(slots), m.step_labels(slots, None, ids.shape[1]))

    assert (logits(a) - logits(b)).abs().max() > 1e-3
    # no condition is the null label of each kind
    nul = torch.full((1, 2), -1)
    assert torch.allclose(logits(nul), m.decode_logits(z, ids), atol=1e-5)
    # the fast decoder (plain tensor ops) gives the same phrases as stepping nn.LSTM, labels and bar positions included
    g = torch.Generator().manual_seed(1)
    fast = m.decode_ids(z, 0.8, torch.Generator().manual_seed(1), a)
    m.fast_decode = False
    try:
        slow = m.decode_ids(z, 0.8, g, a)
    finally:
        m.fast_decode = True
    assert torch.equal(fast, slow)
    # a label token is never decoded as a symbol of the phrase
    assert not np.isin(fast.numpy(), [i for ids_ in c.label_groups.values() for i in ids_]).any()
    # beam search takes the labels too
    assert m.decode_beam(z[:2], 3, a).shape == (2, m.phrase_len)


def test_a_bad_label_is_a_one_line_error(cond_run, tmp_path, capsys):
    from tunesmith.cli import main

    assert main(["sample", str(cond_run), "--condition", "metre=5/4", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "5/4" in err and len(err.splitlines()) == 1
    m = MelodyVAE(16, phrase_len=8, steps_per_bar=4, embed_dim=4, enc_hidden=8, dec_hidden=8, latent_dim=4)
    with pytest.raises(TunesmithError, match="trained without condition labels"):
        m.generate(plain_codec(), 1, condition="metre=3/4")


def test_a_model_without_labels_is_the_unconditioned_one():
    m = MelodyVAE(16, phrase_len=8, steps_per_bar=4, embed_dim=4, enc_hidden=8, dec_hidden=8, latent_dim=4)
    assert not any("label" in k or "pos_embed" in k for k in m.state_dict())
    assert m.to_latent.in_features == 16 and m.dec.input_size == 4 + 4 and m.dec_init.in_features == 4
    with pytest.raises(TunesmithError, match="decoder = 'flat'"):
        MelodyVAE(18, phrase_len=8, steps_per_bar=4, decoder="hierarchical", label_groups={"mode": [16, 17]})


def test_a_condition_draws_codes_from_its_labels_aggregate_posterior(cond_run):
    import json

    from tunesmith.training import load_run

    assert "label_prior" in json.loads((cond_run / "sliders.json").read_text())
    m, c, _, _ = load_run(cond_run)
    lab = m.condition_ids(c, "mode=minor")
    slot = int(m.label_slots(lab, 1)[0, 1])
    assert (m.label_code_std[slot] > 0).all()
    z = m.label_prior(lab, 4000, torch.Generator().manual_seed(0))
    # one kind asked: the codes are N(mean, std) of that label's training codes
    assert torch.allclose(z.mean(0), m.label_code_mean[slot], atol=0.1)
    assert torch.allclose(z.std(0), m.label_code_std[slot], rtol=0.1)
    assert m.label_prior(torch.full((1, 2), -1), 3) is None        # no label asked: the N(0, I) prior


def test_guidance_mixes_the_labelled_and_the_null_logits(cond_run):
    from tunesmith.training import load_run

    m, c, _, _ = load_run(cond_run)
    z = torch.randn(5, m.latent_dim, generator=torch.Generator().manual_seed(2))
    lab = m.condition_ids(c, "metre=3/4,mode=minor")

    def draw(labels, w=1.0):
        return m.decode_ids(z, 0.9, torch.Generator().manual_seed(3), labels, w)

    # w = 0 is the null-label model, w = 1 the plain conditional one (same noise, same phrases)
    assert torch.equal(draw(lab, 0.0), draw(None))
    assert torch.equal(draw(lab, 1.0), m.decode_ids(z, 0.9, torch.Generator().manual_seed(3), lab))
    # w = 4: the first step's symbol is the argmax of l_null + 4 (l_labels - l_null), computed by hand
    ids = m.decode_ids(z, None, None, lab, 4.0)
    slots_c, slots_u = m.label_slots(lab.expand(5, -1), 5), m.label_slots(None, 5)
    first = [m.decode_logits(z, ids, m.label_vector(s), m.step_labels(s, None, ids.shape[1]))[:, 0]
             for s in (slots_c, slots_u)]
    mix = first[1] + 4.0 * (first[0] - first[1])
    mix[:, m.label_slot_of >= 0] = float("-inf")
    assert torch.equal(ids[:, 0], mix.argmax(-1))
    # the fast decoder and stepping nn.LSTM agree under guidance too
    m.fast_decode = False
    try:
        slow = m.decode_ids(z, None, None, lab, 4.0)
    finally:
        m.fast_decode = True
    assert torch.equal(ids, slow)
    with pytest.raises(TunesmithError, match="beam search"):
        m.generate(c, 1, condition="mode=minor", guidance=2.0, beam=4)
    with pytest.raises(TunesmithError, match="from 0 to 20"):
        m.generate(c, 1, condition="mode=minor", guidance=-1.0, temperature=0.7)
    plain = MelodyVAE(16, phrase_len=8, steps_per_bar=4, embed_dim=4, enc_hidden=8, dec_hidden=8, latent_dim=4)
    with pytest.raises(TunesmithError, match="needs a conditioned model"):
        plain.generate(plain_codec(), 1, guidance=2.0)


def test_guidance_per_kind_composes_the_label_sets_in_order(cond_run, tmp_path):
    from tunesmith.cli import main
    from tunesmith.training import load_run

    assert main(["sample", str(cond_run), "--condition", "metre=3/4,mode=minor", "--set", "guidance=metre=2,mode=4",
                 "--num", "1", "--temperature", "0.8", "--out", str(tmp_path / "g")]) == 0
    assert len(list((tmp_path / "g").glob("*.mid"))) == 1

    m, c, _, _ = load_run(cond_run)
    assert m.guidance_scales("metre=1.5,mode=5") == [1.5, 5.0] and m.guidance_scales("mode=5") == [1.0, 5.0]
    assert m.guidance_scales(3) == [3.0, 3.0] == m.guidance_scales("3") and m.guidance_scales({"mode": 2}) == [1.0, 2.0]
    for bad, msg in (("key=2", "unknown kind 'key'"), ("loud", "a number or per kind"), ("mode=30", "from 0 to 20")):
        with pytest.raises(TunesmithError, match=msg):
            m.guidance_scales(bad)
    z = torch.randn(4, m.latent_dim, generator=torch.Generator().manual_seed(4))
    both = m.condition_ids(c, "metre=3/4,mode=minor")
    # one scale for every kind is the two-branch formula; a kind not asked for takes no branch
    assert torch.equal(m.decode_ids(z, 0.9, torch.Generator().manual_seed(5), both, [3.0, 3.0]),
                       m.decode_ids(z, 0.9, torch.Generator().manual_seed(5), both, 3.0))
    mode_only = m.condition_ids(c, "mode=minor")
    assert m.guidance_branches(mode_only, [2.0, 1.0]) is None and len(m.guidance_branches(mode_only, [1.0, 4.0])[0]) == 2
    # metre 2, mode 5: l_0 + 2 (l_metre - l_0) + 5 (l_metre,mode - l_metre) at the first step, by hand
    ids = m.decode_ids(z, None, None, both, [2.0, 5.0])
    metre_only = both.clone()
    metre_only[0, 1] = -1

    def first(lab):
        s = m.label_slots(None if lab is None else lab.expand(4, -1), 4)
        return m.decode_logits(z, ids, m.label_vector(s), m.step_labels(s, None, ids.shape[1]))[:, 0]

    l0, lm, lb = first(None), first(metre_only), first(both)
    mix = l0 + 2.0 * (lm - l0) + 5.0 * (lb - lm)
    mix[:, m.label_slot_of >= 0] = float("-inf")
    assert torch.equal(ids[:, 0], mix.argmax(-1))
    assert not torch.equal(ids, m.decode_ids(z, None, None, both, 5.0))   # not the one-scale result
    out = m.generate(c, 2, generator=torch.Generator().manual_seed(0), temperature=0.7, condition="metre=3/4,mode=minor",
                     guidance="metre=1.5,mode=5")
    assert len(out) == 2


def test_the_label_adversary_trains_on_detached_codes_and_charges_the_encoder_only_above_chance():
    torch.manual_seed(0)
    m = MelodyVAE(20, phrase_len=8, steps_per_bar=4, embed_dim=4, enc_hidden=8, dec_hidden=8, latent_dim=4,
                  label_groups={"metre": [16, 17], "mode": [18, 19]}, label_adversary=2.0)
    plain = MelodyVAE(20, phrase_len=8, steps_per_bar=4, embed_dim=4, enc_hidden=8, dec_hidden=8, latent_dim=4,
                      label_groups={"metre": [16, 17], "mode": [18, 19]})
    assert not any(k.startswith("adversary") for k in plain.state_dict())   # off by default: no new weights
    labels = torch.tensor([[16, 18], [16, 19], [17, 18], [17, 19]])
    mu = torch.randn(4, 4, requires_grad=True)
    # an adversary that says nothing (zero output: uniform) costs the encoder nothing; its loss is log 2 per kind
    with torch.no_grad():
        m.adversary[2].weight.zero_()
        m.adversary[2].bias.zero_()
    fit, enc = m.adversary_losses(mu, labels)
    assert abs(fit.item() - 2 * np.log(2.0)) < 1e-6 and enc.item() == 0.0
    # an adversary that reads the mode from the code: the encoder pays entropy - CE; the gradients stay apart
    with torch.no_grad():
        m.adversary[0].weight.zero_()
        m.adversary[0].bias.zero_()
        m.adversary[0].weight[0, 0] = 1.0
        m.adversary[2].weight[4, 0], m.adversary[2].weight[3, 0] = 5.0, -5.0   # slots: metre 0, 1, null 2; mode 3, 4
    mu2 = torch.tensor([[0.0, 0, 0, 0], [1.0, 0, 0, 0], [0.0, 0, 0, 0], [1.0, 0, 0, 0]], requires_grad=True)
    fit, enc = m.adversary_losses(mu2, labels)
    p = torch.softmax(torch.tensor([[0.0, 0.0], [-5.0, 5.0]]), 1)
    ce_mode = -(torch.log(p[0, 0]) + torch.log(p[1, 1])) / 2
    assert torch.isclose(enc, torch.log(torch.tensor(2.0)) - ce_mode, atol=1e-5)
    enc.backward()
    assert mu2.grad.abs().sum() > 0 and all(q.grad is None for q in m.adversary.parameters())
    mu2.grad = None
    fit.backward()
    assert mu2.grad is None and m.adversary[2].weight.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def page_runs(cond_run, tmp_path_factory):
    from tunesmith.training import train

    d = tmp_path_factory.mktemp("mvae_plain")
    cfg = d / "tiny_plain.toml"
    cfg.write_text(textwrap.dedent(TINY_VAE))
    n = torch.get_num_threads()
    try:
        train(cfg, d / "plain", device="cpu", max_steps=5, progress=False)
    finally:
        torch.set_num_threads(n)
    return [cond_run, d / "plain"]


@pytest.mark.filterwarnings("ignore:.*httpx2.*")
def test_the_page_api_lists_the_vae_labels_and_samples_with_them(page_runs):
    from starlette.testclient import TestClient

    from tunesmith.serve.app import create_app
    from tunesmith.training import load_run

    with TestClient(create_app(page_runs)) as client:
        models = {m["name"]: m for m in client.get("/api/models").json()}
        cond, plain = models["run"], models["plain"]
        assert cond["vae_conditions"]["mode"] == ["major", "minor"] and "3/4" in cond["vae_conditions"]["metre"]
        assert cond["vae_guidance"] == {"metre": 1.0, "mode": 1.0} and "vae_conditions" not in plain
        body = {"model": "run", "condition": "metre=3/4,mode=minor", "guidance": 2.0, "seed": 5}
        r = client.post("/api/melody-vae/sample", json=body)
        assert r.status_code == 200, r.text
        j = r.json()
        assert j["notes"] and j["seed"] == 5 and j["condition"] == "metre=3/4,mode=minor"
        # the same phrase as generate() with that seed, condition and guidance at the run's temperature
        m, c, cfg, _ = load_run(page_runs[0])
        want = m.generate(c, 1, generator=torch.Generator().manual_seed(5), temperature=cfg.sample.get("temperature"),
                          condition="metre=3/4,mode=minor", guidance=2.0)[0]
        assert [n["p"] for n in j["notes"]] == [int(p) for p in want.sorted().pitch]
        r = client.post("/api/melody-vae/sample", json={"model": "run", "condition": "metre=5/4"})
        assert r.status_code == 422 and "5/4" in r.json()["detail"] and "\n" not in r.json()["detail"]
        r = client.post("/api/melody-vae/sample", json={"model": "plain", "condition": "mode=minor"})
        assert r.status_code == 422 and "without condition labels" in r.json()["detail"]
        assert client.post("/api/melody-vae/sample", json={**body, "guidance": 50}).status_code == 422
        r = client.post("/api/melody-vae/sample", json={**body, "guidance": "metre=2,mode=4"})
        want = m.generate(c, 1, generator=torch.Generator().manual_seed(5), temperature=cfg.sample.get("temperature"),
                          condition="metre=3/4,mode=minor", guidance="metre=2,mode=4")[0]
        assert r.status_code == 200 and [n["p"] for n in r.json()["notes"]] == [int(p) for p in want.sorted().pitch]
        r = client.post("/api/melody-vae/sample", json={**body, "guidance": "key=2"})
        assert r.status_code == 422 and "unknown kind" in r.json()["detail"]


CHROMIUM = "/usr/bin/chromium"


def on_vae_page(runs, check, timeout_ms: int = 30_000) -> None:
    """Serve ``runs``, open the page in chromium until its melody-VAE condition block is there, and run ``await
    check(page, bodies)`` (``bodies``: every /api/melody-vae/sample request's JSON so far); no page error allowed."""
    import asyncio
    import json

    from playwright.async_api import async_playwright
    from test_browser import ARGS, SETTLED
    from test_serve import LiveServer

    from tunesmith.serve.app import create_app

    async def main(url):
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = await (await browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)).new_page()
            problems, bodies = [], []
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("request", lambda r: bodies.append(json.loads(r.post_data))
                    if r.url.endswith("/api/melody-vae/sample") else None)
            try:
                await page.goto(url)
                await page.wait_for_function(SETTLED, timeout=timeout_ms)
                await page.wait_for_selector("#mv-cond-mode", timeout=timeout_ms)
                await check(page, bodies)
                assert problems == []
            finally:
                await browser.close()

    with LiveServer(create_app(runs)) as srv:
        asyncio.run(main(srv.url))


@pytest.mark.browser
@pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")
def test_the_page_offers_the_vae_labels_and_sends_them(page_runs):
    from test_browser import S, SETTLED, select_and_wait

    async def check(page, bodies):
        assert await page.locator("#mv-cond-mode option").all_text_contents() == ["any", "major", "minor"]
        assert await page.locator("#mv-cond-metre option").count() >= 3
        await select_and_wait(page, "#mv-cond-metre", "3/4")
        v = await select_and_wait(page, "#mv-cond-mode", "minor")
        assert bodies[-1]["condition"] == "metre=3/4,mode=minor"
        assert bodies[-1]["guidance"] == "metre=1,mode=1"
        await page.locator("#mv-guidance-mode").fill("4")                # a kind's guidance scale
        await page.wait_for_function(f"{S}.version > {v}", timeout=30_000)
        await page.wait_for_timeout(300)
        assert bodies[-1]["guidance"] == "metre=1,mode=4"
        seed = bodies[-1]["seed"]
        v = await page.evaluate(f"{S}.version")
        await page.click("#mv-sample")                                  # a new phrase: a new seed
        await page.wait_for_function(f"{S}.version > {v}", timeout=30_000)
        assert bodies[-1]["seed"] != seed and bodies[-1]["condition"] == "metre=3/4,mode=minor"
        piece = await page.evaluate(f"{S}.piece")                      # the sampled phrase is on screen
        assert piece["melodyVae"] > 0 and piece["seed"] == bodies[-1]["seed"]
        await page.select_option("#model", "plain")                     # an unconditioned VAE
        await page.wait_for_function(SETTLED, timeout=30_000)
        assert await page.locator("#mv-cond-mode").count() == 0

    on_vae_page(page_runs, check)


@pytest.mark.browser
@pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")
@pytest.mark.skipif("melody-vae-4bar-cond" not in __import__("tunesmith.zoo").zoo.names(),
                    reason="zoo:melody-vae-4bar-cond is not installed")
def test_the_zoo_vae_page_starts_from_its_guidance_per_kind_and_writes_the_asked_mode():
    from test_browser import S, select_and_wait

    async def check(page, bodies):
        # the run's [sample] guidance (metre 1.5, mode 12) is where the sliders start
        assert await page.locator("#mv-guidance-metre").input_value() == "1.5"
        assert await page.locator("#mv-guidance-mode").input_value() == "12"
        await select_and_wait(page, "#mv-cond-mode", "minor", timeout=60_000)
        assert bodies[-1] == {**bodies[-1], "condition": "mode=minor", "guidance": "metre=1.5,mode=12"}
        piece = await page.evaluate(f"{S}.piece")
        assert piece["notes"] and piece["melodyVae"] > 0

    on_vae_page(["zoo:melody-vae-4bar-cond"], check, timeout_ms=60_000)
