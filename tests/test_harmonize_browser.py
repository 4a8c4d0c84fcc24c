"""The harmoniser panel in a real browser (headless chromium): a held-out soprano and an uploaded MIDI melody
come back in four voices, the soprano unchanged; the 4-track MIDI download reads back."""
import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_browser import CHROMIUM, SETTLED, _open  # noqa: E402
from test_serve import LiveServer  # noqa: E402

# slow: the page composes a first piece with the real model before the panel is used
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")]


@pytest.fixture(scope="module")
def server():
    from tunesmith.serve.app import create_app

    with LiveServer(create_app(["zoo:chorale-harmonizer"])) as srv:
        yield srv


def test_harmonise_a_held_out_soprano_and_an_upload(server, tmp_path):
    from playwright.async_api import async_playwright

    from tunesmith.data.midi import read_midi, write_midi
    from tunesmith.data.notes import Score
    from tunesmith.serve.harmonize import sopranos

    mel = Score.from_notes([(67, 0, 1), (67, 1, 1), (69, 2, 1), (71, 3, 1), (72, 4, 2), (71, 6, 2)], tempo=90)
    mid = write_midi(mel, tmp_path / "tune.mid")
    want0 = [(int(p), round(float(s), 5), round(float(d), 5)) for p, s, d in sopranos()[0].notes()]

    async def main():
        async with async_playwright() as pw:
            browser, page, problems = await _open(pw, server.url)
            try:
                await page.goto(server.url + "/")
                await page.wait_for_function(SETTLED, timeout=180_000)  # the first piece (composed)
                await page.wait_for_selector("#hz-go", timeout=30_000)
                assert await page.is_visible("#harmonize-panel")
                await page.select_option("#hz-source", "0")
                await page.fill("#hz-steps", "8")
                await page.click("#hz-go")
                await page.wait_for_function("window.tunesmith.piece() && window.tunesmith.piece().harmonized === 1",
                                             timeout=180_000)
                notes = await page.evaluate("window.tunesmith.piece().notes")
                assert len(notes) > len(want0)
                async with page.expect_download() as dl:
                    await page.click("#hz-midi")
                path = tmp_path / "chorale.mid"
                await (await dl.value).save_as(path)
                back = read_midi(path)
                assert sorted(set(back.track.tolist())) == [0, 1, 2, 3]
                assert [(int(p), round(s, 5), round(d, 5)) for p, s, d in back.select(back.track == 0).notes()] == want0
                # upload a melody with the page's own MIDI input, then harmonise "your melody"
                await page.set_input_files("#midi-file", str(mid))
                await page.wait_for_function("window.tunesmith.piece() && window.tunesmith.piece().uploaded",
                                             timeout=60_000)
                assert await page.input_value("#hz-source") == "piece"
                await page.click("#hz-go")
                await page.wait_for_function("window.tunesmith.piece().harmonized === 2", timeout=180_000)
                async with page.expect_download() as dl:
                    await page.click("#hz-midi")
                await (await dl.value).save_as(path)
                back = read_midi(path)
                assert back.select(back.track == 0).notes() == mel.notes()
                assert not problems, problems
            finally:
                await browser.close()

    asyncio.run(main())
