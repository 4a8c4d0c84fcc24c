"""A real browser (Debian's chromium, headless, driven by Playwright) on the web app: load the page, move a
slider, play / pause / stop, switch model, download the MIDI and parse it.

``python tests/test_browser.py RUN [RUN...] --out docs/webapp.png`` takes the README's screenshot from real runs.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_serve import LiveServer, make_runs  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--autoplay-policy=no-user-gesture-required"]


def open_page(pw, url):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    # bypass_csp: the page itself runs under a strict CSP; Playwright needs eval for wait_for_function
    page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 900}, bypass_csp=True)
    problems = []
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("request", lambda r: problems.append(f"offsite: {r.url}") if not r.url.startswith(url) and
            not r.url.startswith(("blob:", "data:")) else None)
    page.goto(url + "/")
    page.wait_for_function("window.tunesmith && window.tunesmith.state.piece && window.tunesmith.state.version >= 1")
    return browser, page, problems


@pytest.mark.browser
def test_browser_sliders_play_and_download(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from tunesmith.data.midi import read_midi
    from tunesmith.serve.app import create_app

    runs = make_runs(tmp_path, vae_steps=60)
    app = create_app([runs["vae"], runs["lstm"]])
    with LiveServer(app) as srv, sync_playwright() as pw:
        browser, page, problems = open_page(pw, srv.url)
        try:
            assert page.locator("#model option").count() == 2
            assert page.locator(".slider input").count() == 6
            assert "notes" in page.locator("#status").inner_text()
            # move slider 1 with the keyboard, as a person would: the roll is redrawn from a new answer
            v0 = page.evaluate("window.tunesmith.state.version")
            page.locator("#slider-0").focus()
            page.keyboard.press("End")  # to the top of its range (+3 standard deviations)
            page.wait_for_function(f"window.tunesmith.state.version > {v0} && !window.tunesmith.state.inflight")
            assert page.evaluate("window.tunesmith.state.sliders[0]") == 3
            assert page.evaluate("window.tunesmith.state.piece.sliders[0]") == 3
            # play: the playhead moves; pause keeps the place; stop goes back to the start
            page.locator("#play").click()
            page.wait_for_function("window.tunesmith.state.playing && window.tunesmith.state.position > 0.3", timeout=10_000)
            assert page.locator("body").get_attribute("data-playing") == "1"
            page.locator("#pause").click()
            pos = page.evaluate("window.tunesmith.state.position")
            assert not page.evaluate("window.tunesmith.state.playing") and pos > 0.3
            page.wait_for_timeout(200)
            assert page.evaluate("window.tunesmith.state.position") == pos
            page.locator("#stop").click()
            assert page.evaluate("window.tunesmith.state.position") == 0
            # random and reset
            v1 = page.evaluate("window.tunesmith.state.version")
            page.locator("#random").click()
            page.wait_for_function(f"window.tunesmith.state.version > {v1} && !window.tunesmith.state.inflight")
            page.locator("#reset").click()
            page.wait_for_function("window.tunesmith.state.sliders.every(v => v === 0) && !window.tunesmith.state.inflight")
            # download the MIDI of what is shown, and read it back
            n = page.evaluate("window.tunesmith.state.piece.notes.length")
            with page.expect_download() as dl:
                page.locator("#download-midi").click()
            path = tmp_path / "download.mid"
            dl.value.save_as(path)
            assert dl.value.suggested_filename == "tunesmith.mid"
            score = read_midi(path)
            assert len(score) == n > 0
            # the LSTM: primer and temperature controls
            page.locator("#model").select_option("lstm")
            page.wait_for_function("window.tunesmith.state.model.name === 'lstm' && window.tunesmith.state.piece.model === 'lstm'")
            assert page.locator("#primer").is_visible() and not page.locator("#sliders").is_visible()
            assert page.locator("#primer").input_value() == "67 _ 67 _"
            if os.environ.get("TUNESMITH_SCREENSHOT"):
                page.screenshot(path=os.environ["TUNESMITH_SCREENSHOT"])
            assert problems == []
        finally:
            browser.close()


def screenshot(runs: list[str], out: str) -> None:
    """Serve real runs, move a few sliders, start playing and take a screenshot."""
    from playwright.sync_api import sync_playwright

    from tunesmith.serve.app import create_app

    with LiveServer(create_app(runs)) as srv, sync_playwright() as pw:
        browser, page, problems = open_page(pw, srv.url)
        moves = ((0, "PageUp", 4), (1, "PageDown", 3), (2, "PageUp", 3), (3, "PageDown", 2), (5, "PageUp", 2),
                 (8, "PageDown", 3))
        for i, key, times in moves:  # PageUp/PageDown move a range input by a tenth of its range
            if page.locator(f"#slider-{i}").count():
                page.locator(f"#slider-{i}").focus()
                for _ in range(times):
                    page.keyboard.press(key)
        page.wait_for_timeout(800)
        page.wait_for_function("!window.tunesmith.state.inflight")
        page.locator("#play").click()
        page.wait_for_function("window.tunesmith.state.position > 6", timeout=20_000)
        page.screenshot(path=out)
        print(page.locator("#status").inner_text(), problems)
        browser.close()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", default="docs/webapp.png")
    a = ap.parse_args()
    screenshot(a.runs, a.out)
