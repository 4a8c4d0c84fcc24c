"""A real browser (Debian's chromium, headless, driven by Playwright) on the web app, as a musician uses it.

Each bug of issue 14 has a test here that failed before its fix: slider moves lost behind a slow server,
"New piece" dropped while a request is in flight, the playhead jumping on a tempo change, Space not pausing
after Play was clicked, raw JSON errors, sideways scrolling at 420 px. ``test_a_complete_visit`` walks a whole
session: open, pick a model, upload a MIDI, continue it, move sliders, change tempo while playing, loop,
download the MIDI and the WAV and read both back.

Server latency is injected with a Playwright route (``page.route``) that holds each answer for a while.

``python tests/test_browser.py VAE_RUN LSTM_RUN`` takes the docs' screenshots from real runs (``docs/webapp.png``
and ``docs/webapp_lstm.png`` at 1280 px, ``docs/webapp-420.png`` at 420 px).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_serve import LiveServer, make_runs  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--autoplay-policy=no-user-gesture-required"]
S = "window.tunesmith.state"
SETTLED = f"{S}.piece && !{S}.inflight && !{S}.pending"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason=f"{CHROMIUM} is missing: bash scripts/setup.sh installs it "
                                        "(apt-get install chromium)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tunesmith.serve.app import create_app

    # 20 sliders, as the seed's app has: the grid must fit a 420 px screen
    runs = make_runs(tmp_path_factory.mktemp("browser_runs"), vae_steps=60, vae_model={"latent_dim": 20, "n_sliders": 20})
    with LiveServer(create_app([runs["vae"], runs["lstm"]])) as srv:
        yield srv


@pytest.fixture(scope="module")
def melody_mid(tmp_path_factory):
    """A 2-bar melody (G A B C D C B A as eighths, then a half-note G), written as a MIDI file."""
    from tunesmith.data.midi import write_midi
    from tunesmith.data.notes import Score

    pitches = [67, 69, 71, 72, 74, 72, 71, 69]
    notes = [(p, 0.5 * i, 0.5) for i, p in enumerate(pitches)] + [(67, 4.0, 2.0)]
    return write_midi(Score.from_notes(notes, tempo=100.0), tmp_path_factory.mktemp("mid") / "tune.mid")


async def _open(pw, url, width=1280, height=900, path="/"):
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    # bypass_csp: the page itself runs under a strict CSP; Playwright needs eval for wait_for_function
    ctx = await browser.new_context(accept_downloads=True, viewport={"width": width, "height": height},
                                    bypass_csp=True)
    page = await ctx.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("request", lambda r: problems.append(f"offsite: {r.url}") if not r.url.startswith(url) and
            not r.url.startswith(("blob:", "data:")) else None)
    return browser, page, problems


def browse(url, body, width=1280, height=900, latency_ms=0, path="/", wav_latency_ms=0):
    """Run ``await body(page, problems, sent)`` in a fresh headless chromium on the app; ``sent`` collects the
    JSON bodies of /api/generate requests; ``latency_ms`` holds every /api/generate answer that long,
    ``wav_latency_ms`` every /api/wav answer."""
    from playwright.async_api import async_playwright

    async def main():
        async with async_playwright() as pw:
            browser, page, problems = await _open(pw, url, width, height)
            sent = []

            async def slow(route):
                sent.append(json.loads(route.request.post_data or "{}"))
                if latency_ms:
                    await asyncio.sleep(latency_ms / 1000)
                await route.continue_()

            await page.route("**/api/generate", slow)

            async def slow_wav(route):
                await asyncio.sleep(wav_latency_ms / 1000)
                await route.continue_()

            if wav_latency_ms:
                await page.route("**/api/wav", slow_wav)
            try:
                await page.goto(url + path)
                await page.wait_for_function(SETTLED)
                await body(page, problems, sent)
            finally:
                await browser.close()

    asyncio.run(main())


async def settle(page):
    await page.wait_for_function(SETTLED, timeout=20_000)


async def select_and_wait(page, selector: str, value: str, also: str = "", timeout: int = 30_000):
    """Pick ``value`` in the ``<select>`` and wait until the page has a newer piece (``also``: one more JS
    condition to wait for, e.g. SETTLED); returns the version it waited to pass."""
    v = await page.evaluate(f"{S}.version")
    await page.select_option(selector, value)
    await page.wait_for_function(f"{S}.version > {v}" + (f" && {also}" if also else ""), timeout=timeout)
    return v


async def no_sideways_scroll(page):
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# ------------------------------------------------------------------------------------------ the bugs
def test_slider_moves_are_never_lost_behind_a_slow_server(server):
    async def body(page, problems, sent):
        # holding ArrowUp on slider 3: 20 quick presses at 60 ms of server time per answer
        await page.locator("#slider-2").focus()
        for _ in range(20):
            await page.keyboard.press("ArrowUp")
        await settle(page)
        assert await page.locator("#slider-2").input_value() == "1"
        assert await page.evaluate(f"{S}.sliders[2]") == 1
        assert await page.evaluate(f"{S}.piece.sliders[2]") == 1      # the piece shown is the latest one
        # a 30 px drag on slider 1 (vertical: up is more)
        box = await page.locator("#slider-0").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await page.mouse.move(x, y)
        await page.mouse.down()
        await page.mouse.move(x, y - 30, steps=10)
        await page.mouse.up()
        dragged = float(await page.locator("#slider-0").input_value())
        await settle(page)
        assert dragged > 1.0
        assert float(await page.locator("#slider-0").input_value()) == dragged
        assert await page.evaluate(f"{S}.piece.sliders[0]") == dragged
        assert problems == []

    browse(server.url, body, latency_ms=60)


def test_new_piece_and_random_are_not_dropped_while_a_request_is_in_flight(server):
    async def body(page, problems, sent):
        sent.clear()
        v0 = await page.evaluate(f"{S}.version")
        await page.locator("#generate").click()
        await page.locator("#random").click()           # while the first is still on its way
        await settle(page)
        random_requests = [b for b in sent if "sliders" not in b]
        assert len(random_requests) == 2, sent
        assert await page.evaluate(f"{S}.version") >= v0 + 2
        assert problems == []

    browse(server.url, body, latency_ms=400)


def test_playhead_keeps_its_beat_across_a_tempo_change(server):
    async def body(page, problems, sent):
        await page.locator("#sound").select_option("synth")  # no hand-over to the render during the check
        await page.locator("#play").click()
        await page.wait_for_function(f"{S}.playing && {S}.position > 1.5", timeout=10_000)
        # the tempo slider's input event, with the beat read just before and just after (no time passes)
        before, after = await page.evaluate("""() => { const b0 = window.tunesmith.beat();
            const t = document.querySelector('#tempo'); t.value = 60;
            t.dispatchEvent(new Event('input', {bubbles: true}));
            return [b0, window.tunesmith.beat()]; }""")
        assert abs(after - before) < 0.05, (before, after)
        # and it moves at the new tempo: 1 beat per second of the page's clock at 60 bpm (2 at the old tempo)
        t0 = await page.evaluate("[window.tunesmith.beat(), performance.now()]")
        await page.wait_for_timeout(600)
        t1 = await page.evaluate("[window.tunesmith.beat(), performance.now()]")
        rate = (t1[0] - t0[0]) / ((t1[1] - t0[1]) / 1000)
        assert 0.75 < rate < 1.25, rate
        assert problems == []

    browse(server.url, body)


def test_space_pauses_after_play_was_clicked(server):
    async def body(page, problems, sent):
        await page.locator("#play").click()
        await page.wait_for_function(f"{S}.playing && {S}.position > 0.2", timeout=10_000)
        await page.keyboard.press("Space")
        assert not await page.evaluate(f"{S}.playing")
        pos = await page.evaluate(f"{S}.position")
        await page.wait_for_timeout(150)
        assert await page.evaluate(f"{S}.position") == pos > 0
        await page.keyboard.press("Space")            # and plays again from there
        assert await page.evaluate(f"{S}.playing")
        # the hooks feature scripts use: a piece set from outside is shown, played and announced
        got = await page.evaluate("""() => { const seen = [];
            window.tunesmith.onPieceChange((p) => seen.push(p.notes.length));
            window.tunesmith.setPiece({notes: [{p: 60, s: 0, d: 1}, {p: 64, s: 1, d: 3}]});
            const p = window.tunesmith.piece();
            return [seen, p.length, p.notes[0].v, window.tunesmith.model().name, window.tunesmith.state.playing]; }""")
        assert got == [[2], 4, 90, "vae", True]
        assert "2 notes from C4 to E4" in await page.locator("#summary").inner_text()
        assert problems == []

    browse(server.url, body)


@pytest.mark.parametrize("width", [420, 1280])
def test_no_sideways_scroll_and_errors_are_one_short_sentence(server, width):
    async def body(page, problems, sent):
        assert await no_sideways_scroll(page), "VAE page scrolls sideways"
        await page.locator("#model").select_option("lstm")
        await page.wait_for_function(f"{S}.piece.model === 'lstm' && !{S}.inflight")
        await page.locator("#primer").fill("6O" * 200)   # 400 characters, not a melody
        await page.locator("#generate").click()
        await page.wait_for_function("document.querySelector('#status').classList.contains('error')")
        msg = await page.locator("#status").inner_text()
        assert len(msg) < 160 and "{" not in msg and "[" not in msg and "6O" * 6 not in msg, msg
        assert "primer" in msg.lower(), msg
        assert await no_sideways_scroll(page), "LSTM page with an error scrolls sideways"
        problems[:] = [p for p in problems if "422" not in p]  # the browser logs the refused request itself
        assert problems == []

    browse(server.url, body, width=width)


def test_a_long_render_shows_progress_and_the_synth_plays_meanwhile(server):
    async def body(page, problems, sent):
        await page.locator("#play").click()
        await page.wait_for_function(f"{S}.playing && {S}.sound === 'synth'")   # at once, before the render
        await page.wait_for_function("!document.querySelector('#render-progress').classList.contains('hidden')")
        await page.wait_for_timeout(600)
        assert await page.evaluate("document.querySelector('#render-progress').value") > 0
        before = await page.evaluate("window.tunesmith.beat()")
        await page.wait_for_function(f"{S}.sound === 'gm'", timeout=20_000)      # handed over at the same beat
        assert await page.evaluate("window.tunesmith.beat()") >= before
        assert await page.locator("#render-progress").is_hidden()
        assert problems == []

    browse(server.url, body, wav_latency_ms=1500)


def test_url_keeps_the_state_across_reload(server):
    async def body(page, problems, sent):
        await page.locator("#slider-1").focus()
        for _ in range(4):
            await page.keyboard.press("PageUp")
        await page.locator("#tempo").fill("90")
        await page.locator("#seed-lock").check()
        await settle(page)
        seed = await page.evaluate(f"{S}.seed")
        value = float(await page.locator("#slider-1").input_value())
        notes = await page.evaluate(f"{S}.piece.notes")
        url = page.url
        assert "#" in url
        await page.goto("about:blank")
        await page.goto(url)
        await page.wait_for_function(SETTLED)
        assert float(await page.locator("#slider-1").input_value()) == value != 0
        assert await page.locator("#tempo").input_value() == "90"
        assert await page.evaluate(f"{S}.seed") == seed
        assert await page.evaluate(f"{S}.piece.notes") == notes
        assert problems == []

    browse(server.url, body)


# ------------------------------------------------------------------------------------------ a whole visit
def test_a_complete_visit(server, melody_mid, tmp_path):
    import soundfile as sf

    from tunesmith.data.midi import read_midi

    async def body(page, problems, sent):
        # the models are named by what they are, with a one-line description
        assert await page.locator("#model option").count() == 2
        assert (await page.locator("#model-desc").inner_text()).strip()
        assert "notes" in (await page.locator("#summary").inner_text())
        # pick the LSTM, bring a melody in as a MIDI file: it becomes the primer and the piece on screen
        await page.locator("#model").select_option("lstm")
        await page.wait_for_function(f"{S}.piece.model === 'lstm' && !{S}.inflight")
        assert "16th" in await page.locator("#primer-help").inner_text()
        await page.locator("#midi-file").set_input_files(str(melody_mid))
        await page.wait_for_function("document.querySelector('#primer').value.startsWith('67 _ 69 _')")
        # continue it: the new piece starts with the uploaded melody
        await page.locator("#bars").fill("4")
        await page.locator("#generate").click()
        await page.wait_for_function(f"{S}.piece.model === 'lstm' && !{S}.inflight && {S}.piece.primed")
        pitches = await page.evaluate(f"{S}.piece.notes.map(n => n.p)")
        assert pitches[:9] == [67, 69, 71, 72, 74, 72, 71, 69, 67]
        assert await page.evaluate(f"{S}.piece.length") <= 4 * 4 + 1e-6
        # the on-screen keyboard records a primer
        await page.locator("#primer").fill("")
        await page.locator("#keyboard [data-p='60']").click()
        await page.locator("#keyboard [data-p='64']").click()
        assert (await page.locator("#primer").input_value()).split()[0::2][:2] == ["60", "64"]
        # the VAE: upload the melody as a point in its latent space, then move sliders
        await page.locator("#model").select_option("vae")
        await page.wait_for_function(f"{S}.piece.model === 'vae' && !{S}.inflight")
        await page.locator("#midi-file").set_input_files(str(melody_mid))
        await page.wait_for_function(f"{S}.sliders.some(v => v !== 0) && !{S}.inflight")
        await page.locator("#slider-0").focus()
        await page.keyboard.press("PageUp")
        await settle(page)
        # play, change tempo while playing, loop near the end by clicking the roll
        await page.locator("#loop").check()
        await page.locator("#play").click()
        await page.wait_for_function(f"{S}.playing && {S}.position > 0.5", timeout=10_000)
        await page.locator("#tempo").fill("180")
        assert await page.evaluate(f"{S}.playing")
        box = await page.locator("#roll").bounding_box()
        await page.mouse.click(box["x"] + box["width"] * 0.985, box["y"] + box["height"] / 2)
        assert await page.evaluate(f"window.tunesmith.beat()") > 14
        await page.wait_for_function(f"{S}.playing && window.tunesmith.beat() < 2", timeout=10_000)  # looped
        # the General MIDI render plays once it has arrived
        await page.wait_for_function(f"{S}.sound === 'gm'", timeout=20_000)
        await page.locator("#stop").click()
        # download the MIDI and the WAV of what is shown
        n = await page.evaluate(f"{S}.piece.notes.length")
        length = await page.evaluate(f"{S}.piece.length")
        async with page.expect_download() as dl:
            await page.locator("#download-midi").click()
        d = await dl.value
        assert d.suggested_filename.endswith(".mid")
        await d.save_as(tmp_path / "visit.mid")
        score = read_midi(tmp_path / "visit.mid")
        assert len(score) == n > 0 and score.tempo == pytest.approx(180, rel=1e-3)
        async with page.expect_download() as dl:
            await page.locator("#download-wav").click()
        d = await dl.value
        assert d.suggested_filename.endswith(".wav")
        await d.save_as(tmp_path / "visit.wav")
        x, sr = sf.read(tmp_path / "visit.wav")
        seconds = length * 60 / 180                     # FluidSynth adds about 3 s of release tail
        assert seconds < len(x) / sr < seconds + 3.5 and abs(x).max() > 0.1
        if os.environ.get("TUNESMITH_SCREENSHOT"):
            await page.screenshot(path=os.environ["TUNESMITH_SCREENSHOT"])
        assert problems == []

    browse(server.url, body)


# ------------------------------------------------------------------------------------------ screenshots
def screenshot(runs: list[str], out_dir: str = "docs") -> None:
    """Serve real runs (a VAE first, then a primer model) and take the docs' screenshots: the VAE with a few
    sliders moved, playing its General MIDI render (``webapp.png``, 1280 px, and ``webapp-420.png``, 420 px);
    the primer model continuing an uploaded melody (``webapp_lstm.png``)."""
    import tempfile

    from tunesmith.data.midi import write_midi
    from tunesmith.data.notes import Score
    from tunesmith.serve.app import create_app

    moves = ((0, "PageUp", 4), (1, "PageDown", 3), (2, "PageUp", 3), (3, "PageDown", 2), (5, "PageUp", 2),
             (8, "PageDown", 3))
    out = Path(out_dir)
    tune = [(p, 0.5 * i, 0.5) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69])] + [(67, 4.0, 2.0)]
    mid = write_midi(Score.from_notes(tune, tempo=110.0), Path(tempfile.mkdtemp()) / "my-tune.mid")

    async def vae(page, problems, sent):
        for i, key, times in moves:  # PageUp/PageDown move a range input by a tenth of its range
            if await page.locator(f"#slider-{i}").count():
                await page.locator(f"#slider-{i}").focus()
                for _ in range(times):
                    await page.keyboard.press(key)
        await settle(page)
        await page.locator("#play").click()
        await page.wait_for_function(f"{S}.position > 6 && {S}.sound === 'gm'", timeout=30_000)
        await page.screenshot(path=str(shot), full_page=page.viewport_size["width"] > 600)  # narrow: one screen
        print(shot, await page.locator("#status").inner_text(), problems)

    async def lstm(page, problems, sent):
        names = await page.evaluate("window.tunesmith.state.models.filter(m => m.kind === 'lstm').map(m => m.name)")
        await page.locator("#model").select_option(names[0])
        await page.wait_for_function(f"{S}.piece.model === '{names[0]}' && !{S}.inflight")
        await page.locator("#midi-file").set_input_files(str(mid))
        await page.wait_for_function("document.querySelector('#primer').value.startsWith('67')")
        await page.locator("#bars").fill("8")
        await page.locator("#generate").click()
        await settle(page)
        await page.locator("#play").click()
        await page.wait_for_function(f"{S}.position > 7 && {S}.sound === 'gm'", timeout=30_000)
        await page.screenshot(path=str(shot), full_page=True)
        print(shot, await page.locator("#status").inner_text(), problems)

    with LiveServer(create_app(runs)) as srv:
        shot = out / "webapp.png"
        browse(srv.url, vae)
        shot = out / "webapp-420.png"
        browse(srv.url, vae, width=420, height=900)
        shot = out / "webapp_lstm.png"
        browse(srv.url, lstm)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="the docs' screenshots of the web app from real runs")
    ap.add_argument("runs", nargs="+", help="a VAE run first, then a primer model (LSTM)")
    ap.add_argument("--out-dir", default="docs")
    a = ap.parse_args()
    screenshot(a.runs, a.out_dir)
