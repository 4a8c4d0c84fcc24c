"""The melody VAE in a real browser (Debian's chromium, headless, Playwright): the attribute sliders change the
piece on screen, and the interpolation slider moves from melody A to melody B.

``python tests/test_melody_vae_browser.py zoo:melody-vae-4bar`` takes the docs' screenshot
(``docs/autoencoders/webapp_melody_vae.png``).
"""
from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_browser import ARGS, CHROMIUM, S, SETTLED  # noqa: E402
from test_melody_vae import TINY_VAE  # noqa: E402
from test_serve import LiveServer  # noqa: E402

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]


def run_page(url, body, width=1280, height=1000):
    from playwright.async_api import async_playwright

    async def main():
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            ctx = await browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
            page = await ctx.new_page()
            problems = []
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
            try:
                await page.goto(url)
                await page.wait_for_function(SETTLED, timeout=30_000)
                await page.wait_for_selector("#melody-vae-panel input[data-attr=rests]", timeout=30_000)
                await body(page, problems)
            finally:
                await browser.close()

    asyncio.run(main())


async def settled_version(page, before):
    await page.wait_for_function(f"{S}.version > {before} && !{S}.inflight", timeout=30_000)
    await page.wait_for_timeout(300)  # let a pending request of the feature script land
    return await page.evaluate(f"{S}.piece")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import torch

    from tunesmith.serve.app import create_app
    from tunesmith.training import train

    d = tmp_path_factory.mktemp("mvae_browser")
    cfg = d / "tiny_vae.toml"
    cfg.write_text(textwrap.dedent(TINY_VAE))
    n = torch.get_num_threads()
    try:
        train(cfg, d / "run", device="cpu", max_steps=20, progress=False)
    finally:
        torch.set_num_threads(n)
    app = create_app([d / "run"])
    with LiveServer(app) as srv:
        srv.app = app
        yield srv


def test_attribute_slider_and_interpolation_change_the_piece(server):
    async def body(page, problems):
        assert not await page.locator("#melody-vae-panel").is_hidden()
        assert await page.locator("#melody-vae-panel input[data-attr]").count() == 5 + 1   # 5 attributes + A->B
        v = await page.evaluate(f"{S}.version")
        slider = page.locator("#melody-vae-panel input[data-attr=note_density]")
        await slider.focus()
        for _ in range(10):
            await page.keyboard.press("ArrowRight")
        piece = await settled_version(page, v)
        assert piece["attributes"] == {"note_density": 1.0}
        # interpolation: t = 0 gives A, t = 1 gives B; two different held-out songs give different phrases
        v = await page.evaluate(f"{S}.version")
        await page.locator("#mv-t").fill("1")
        b = await settled_version(page, v)
        assert b["t"] == 1
        v = await page.evaluate(f"{S}.version")
        await page.locator("#mv-t").fill("0")
        a = await settled_version(page, v)
        assert a["t"] == 0
        # by default A is held-out song 0 and B song 1: each endpoint is that song's first phrase, decoded
        assert [a["notes"], b["notes"]] == [expected(server, i) for i in (0, 1)]
        assert problems == []

    run_page(server.url, body)


def expected(server, song):
    import torch

    from tunesmith.serve.app import score_to_json
    from tunesmith.serve.melody_vae import heldout_songs

    (e,) = server.app.state.entries.values()
    with torch.inference_mode():
        z = e.model.encode_score(e.codec, heldout_songs(e)[song])[None]
        return score_to_json(e.codec.decode(e.model.decode_ids(z)[0]), 120.0)["notes"]


def screenshot(runs: list[str], out: Path) -> None:
    from tunesmith.serve.app import create_app

    async def body(page, problems):
        for name, steps in (("note_density", 12), ("pitch_height", 8)):
            v = await page.evaluate(f"{S}.version")
            s = page.locator(f"#melody-vae-panel input[data-attr={name}]")
            await s.focus()
            for _ in range(steps):
                await page.keyboard.press("ArrowRight")
            await settled_version(page, v)
        out.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(out), full_page=True)
        assert problems == [], problems

    with LiveServer(create_app(runs)) as srv:
        run_page(srv.url, body, height=1100)
    print(out)


if __name__ == "__main__":
    screenshot(sys.argv[1:] or ["zoo:melody-vae-4bar"], Path("docs/autoencoders/webapp_melody_vae.png"))
