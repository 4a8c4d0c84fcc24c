"""The sheet music on the web page, in a real browser (Debian's chromium, headless, driven by Playwright) and
under the page's own Content-Security-Policy: abcjs (bundled) engraves the piece on screen as SVG, one note
head per notated note; a new piece is engraved again; "Download ABC" and "Download MusicXML" give files that
read back as the notes on screen; nothing is fetched from elsewhere.

``python tests/test_notation_browser.py RUN [RUN...] --out docs/notation/webapp_notation.png`` takes the
screenshot in docs/notation.md from real runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_serve import LiveServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def open_page(pw, url, viewport=(1280, 900), fragment=""):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    page = browser.new_page(accept_downloads=True, viewport={"width": viewport[0], "height": viewport[1]})
    problems = []
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type in ("error", "warning") else None)
    page.on("request", lambda r: problems.append(f"offsite: {r.url}") if not r.url.startswith(url) and
            not r.url.startswith(("blob:", "data:")) else None)
    page.goto(url + "/" + fragment)
    return browser, page, problems


def wait_engraved(page, version=None, timeout=20_000):
    """Until the notation shows the page's current piece (``data-version`` of #notation equals the page's
    version, and a piece with notes is engraved as SVG; a silent piece shows "(no notes)"), then that version."""
    for _ in range(timeout // 50):
        v = page.evaluate("window.tunesmith.state.version")
        if (version is None or v > version) and page.get_attribute("#notation", "data-version") == str(v) \
                and not page.evaluate("window.tunesmith.notation.inflight"):
            if page.evaluate("(window.tunesmith.piece() || {notes: []}).notes.length") == 0 \
                    or page.locator("#notation svg").count() > 0:
                return v
        page.wait_for_timeout(50)
    raise AssertionError("the notation never caught up with the piece")


def engraved_piece_with_notes(page, tries=20):
    """The tiny test model draws a silent piece now and then (the page's seed is random): ask for new pieces
    until one has notes, then its version."""
    v = wait_engraved(page)
    for _ in range(tries):
        if page.evaluate("window.tunesmith.piece().notes.length") > 0:
            return v
        assert "(no notes)" in page.locator("#notation").inner_text()
        page.locator("#generate").click()
        v = wait_engraved(page, v)
    raise AssertionError(f"{tries} pieces in a row were silent")


def note_heads(piece: dict, metre=None, pickup="auto") -> int:
    """How many notes and chords the layout engraves for the page's piece (tied pieces count one each; a
    melody model's piece gets its pickup inferred, as the page asks)."""
    from tunesmith.data.notes import Score
    from tunesmith.sampling.notation import layout

    s = Score.from_notes([(n["p"], n["s"], n["d"]) for n in piece["notes"]])
    return sum(1 for v in layout(s, metre, pickup).voices for bar in v.bars for pc in bar if pc.pitches)


@pytest.mark.browser
def test_notation_on_the_page_and_downloads(tiny_run, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from tunesmith.data.corpora import parse_file
    from tunesmith.data.notes import Score
    from tunesmith.serve.app import create_app

    with LiveServer(create_app([tiny_run])) as srv, sync_playwright() as pw:
        browser, page, problems = open_page(pw, srv.url)
        try:
            v = engraved_piece_with_notes(page)
            piece = page.evaluate("window.tunesmith.piece()")
            assert len(piece["notes"]) > 0
            abc = page.evaluate("window.tunesmith.notation.abc")
            assert "M:4/4" in abc and "\nK:" in abc and abc.rstrip().endswith("|]")
            assert page.evaluate("window.tunesmith.notation.error") is None
            # abcjs drew the whole piece: one note element per notated note or chord
            heads = page.locator("#notation svg .abcjs-note").count()
            assert heads == note_heads(piece) > 0
            assert page.locator("#notation svg .abcjs-bar").count() >= 1
            # a new piece is engraved again
            page.locator("#generate").click()
            v2 = wait_engraved(page, v)
            piece2 = page.evaluate("window.tunesmith.piece()")
            assert v2 > v and page.locator("#notation svg .abcjs-note").count() == note_heads(piece2)
            want = Score.from_notes([(n["p"], n["s"], n["d"]) for n in piece2["notes"]]).notes()
            # the downloads read back as the notes on screen
            for button, name in (("#download-abc", "tunesmith.abc"), ("#download-musicxml", "tunesmith.musicxml")):
                with page.expect_download() as dl:
                    page.locator(button).click()
                assert dl.value.suggested_filename == name
                path = tmp_path / name
                dl.value.save_as(path)
                back = parse_file(path)[0]
                assert back.notes() == want, name
            if piece2["notes"]:
                assert (tmp_path / "tunesmith.abc").read_text() == page.evaluate("window.tunesmith.notation.abc")
            else:   # the tiny model drew a silent piece (its seed is random): nothing is engraved, the file is rests
                assert page.evaluate("window.tunesmith.notation.abc") is None
                assert "(no notes)" in page.locator("#notation").inner_text()
            assert problems == []
        finally:
            browser.close()


def silent_seed(run, tries=400):
    """A seed for which the page's first request (temperature 1, 8 bars) gets a piece without notes from the
    model in ``run``, or None."""
    from starlette.testclient import TestClient

    from tunesmith.serve.app import create_app

    with TestClient(create_app([run])) as c:
        for seed in range(tries):
            r = c.post("/api/generate", json={"model": run.name, "seed": seed, "temperature": 1.0, "steps": 128,
                                               "tempo": 120})
            if not r.json()["notes"]:
                return seed
    return None


@pytest.mark.browser
def test_a_silent_first_piece_says_so_and_the_next_one_is_engraved(tiny_run):
    """The CI failure of 2026-11-27: the tiny model's first piece (random seed) was silent, nothing was engraved,
    and waiting for an SVG timed out. A silent piece is "(no notes)" in the notation panel, with its version."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    seed = silent_seed(tiny_run)
    if seed is None:
        pytest.skip("the tiny model drew no silent piece in 400 seeds")
    from playwright.sync_api import sync_playwright

    from tunesmith.serve.app import create_app

    with LiveServer(create_app([tiny_run])) as srv, sync_playwright() as pw:
        browser, page, problems = open_page(pw, srv.url, fragment=f"#m={tiny_run.name}&seed={seed}&temp=1&bars=8")
        try:
            v = wait_engraved(page)
            assert page.evaluate("window.tunesmith.piece().seed") == seed
            assert page.evaluate("window.tunesmith.piece().notes.length") == 0
            assert page.locator("#notation svg").count() == 0
            assert "(no notes)" in page.locator("#notation").inner_text()
            assert page.evaluate("window.tunesmith.notation.abc") is None
            v2 = engraved_piece_with_notes(page)
            assert v2 > v and page.locator("#notation svg .abcjs-note").count() > 0
            assert problems == []
        finally:
            browser.close()


def screenshot(runs: list[str], out: str, seed: int = 7) -> None:
    """Serve real runs, make a piece with a fixed seed, wait for its notation, play a little, screenshot."""
    from playwright.sync_api import sync_playwright

    from tunesmith.serve.app import create_app

    with LiveServer(create_app(runs)) as srv, sync_playwright() as pw:
        browser, page, problems = open_page(pw, srv.url, viewport=(1280, 1100))
        wait_engraved(page)
        page.evaluate(f"""window.tunesmith.api('/api/generate', {{model: window.tunesmith.model().name, seed: {seed},
                          steps: 192, temperature: 0.9}}).then((p) => window.tunesmith.setPiece(p))""")
        wait_engraved(page, page.evaluate("window.tunesmith.state.version") - 1)
        page.locator("#play").click()
        page.wait_for_timeout(2500)
        page.screenshot(path=out, full_page=True)
        print(page.locator("#status").inner_text(), problems)
        browser.close()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", default="docs/notation/webapp_notation.png")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    screenshot(a.runs, a.out, a.seed)
