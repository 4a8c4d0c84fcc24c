"""Issue 16, item 4: a conditioned melody model's labels are a declared choice control, listed by GET /api/models
and offered on the page (one select per kind + the guidance scale); POST /api/generate takes them."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import tiny_toml  # noqa: E402
from test_conditioning import LSTM  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*httpx2.*")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import torch

    from tunesmith.training import train

    d = tmp_path_factory.mktemp("cond_page")
    out = {}
    for name, cond in (("cond", 'condition = ["metre", "mode"]'), ("plain", "")):
        cfg = d / f"{name}.toml"
        cfg.write_text(tiny_toml("tiny_cond", LSTM[0], LSTM[1], cond))
        n = torch.get_num_threads()
        try:
            train(cfg, d / name, device="cpu", max_steps=5, progress=False)
        finally:
            torch.set_num_threads(n)
        out[name] = d / name
    return out


@pytest.fixture(scope="module")
def client(runs):
    from starlette.testclient import TestClient

    from tunesmith.serve.app import create_app

    with TestClient(create_app([runs["cond"], runs["plain"]])) as c:
        yield c


def test_models_list_the_condition_choices_and_generate_takes_them(client):
    models = {m["name"]: m for m in client.get("/api/models").json()}
    cond, plain = models["cond"], models["plain"]
    assert set(cond["conditions"]) == {"metre", "mode"} and cond["conditions"]["mode"] == ["major", "minor"]
    assert "3/4" in cond["conditions"]["metre"] and cond["guidance"] == 1.0
    ctl = {c["name"]: c for c in cond["controls"]}
    assert ctl["condition"]["type"] == "choice" and "metre=3/4" in ctl["condition"]["choices"]
    assert "mode=minor" in ctl["condition"]["choices"] and "guidance" in ctl
    assert "conditions" not in plain and "choices" not in {c["name"]: c for c in plain["controls"]}["condition"]
    r = client.post("/api/generate", json={"model": "cond", "condition": "metre=3/4,mode=minor", "guidance": 2.0,
                                           "steps": 32, "seed": 1})
    assert r.status_code == 200, r.text
    r = client.post("/api/generate", json={"model": "cond", "condition": "metre=5/4", "steps": 8})
    assert r.status_code == 422 and "valid:" in r.json()["detail"] and "\n" not in r.json()["detail"]
    r = client.post("/api/generate", json={"model": "plain", "condition": "metre=3/4", "steps": 8})
    assert r.status_code == 422


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")
def test_the_page_offers_one_choice_per_kind_and_sends_it(runs):
    from playwright.async_api import async_playwright
    from test_browser import ARGS, SETTLED, select_and_wait
    from test_serve import LiveServer

    from tunesmith.serve.app import create_app

    async def main(url):
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = await (await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)).new_page()
            problems, bodies = [], []
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/api/generate") else None)
            try:
                await page.goto(url)
                await page.wait_for_function(SETTLED, timeout=30_000)
                assert not await page.locator("#lstm-cond").is_hidden()
                assert await page.locator("#cond-metre option").count() >= 3      # any + the metres
                assert await page.locator("#cond-mode option").all_text_contents() == ["any", "major", "minor"]
                await select_and_wait(page, "#cond-metre", "3/4", SETTLED)
                await select_and_wait(page, "#cond-mode", "minor", SETTLED)
                assert bodies[-1]["condition"] == "metre=3/4,mode=minor" and bodies[-1]["guidance"] == 1
                await page.select_option("#model", "plain")                      # an unconditioned model
                await page.wait_for_function(SETTLED, timeout=30_000)
                assert await page.locator("#lstm-cond").is_hidden()
                assert problems == []
            finally:
                await browser.close()

    with LiveServer(create_app([runs["cond"], runs["plain"]])) as srv:
        asyncio.run(main(srv.url))
