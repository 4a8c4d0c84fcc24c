"""The web page's audio panel (serve/audio.py, static/audio.js): pick a family and a pitch of a conditional
audio model, hear the note, download the WAV; the API refuses what the model does not take."""
import asyncio
import io
import os
import sys
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "tunesmith" / "numba"))

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from test_browser import CHROMIUM, _open  # noqa: E402
from test_serve import LiveServer  # noqa: E402

CONFIG = ('name = "tiny_audio_cvae"\n[data]\nencoding = "harmonic"\ndataset = "nsynth-mini"\n'
          'families = ["flute", "brass"]\nval_fraction = 0.2\nclip_seconds = 0.5\nframes = 16\nharmonics = 16\n'
          'noise_bands = 4\n[model]\nname = "harmonic_cvae"\nlatent_dim = 4\nwidth = 16\n'
          '[train]\nepochs = 1\nbatch_size = 8\nlog_every = 1\n')


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tunesmith.cli import main

    d = tmp_path_factory.mktemp("web_audio")
    (d / "c.toml").write_text(CONFIG)
    assert main(["train", str(d / "c.toml"), "--out", str(d / "run"), "--max-steps", "2", "--quiet"]) == 0
    return d / "run"


@pytest.fixture(scope="module")
def client(run):
    from fastapi.testclient import TestClient

    from tunesmith.serve.app import create_app

    return TestClient(create_app([str(run)]))


def test_models_list_the_audio_controls_and_a_note_comes_back_as_wav(client):
    m = client.get("/api/models").json()[0]
    assert m["kind"] == "audio"
    a = m["audio"]
    assert a["families"] == ["brass", "flute"] and a["pitch"] is True and a["sample_rate"] == 16000
    lo, hi = a["pitch_range"]
    assert lo <= 60 <= hi
    r = client.post("/api/audio/note", json={"model": m["name"], "family": "brass", "pitch": 60, "seed": 7})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert (r.headers["x-tunesmith-family"], r.headers["x-tunesmith-pitch"], r.headers["x-tunesmith-seed"]) == \
        ("brass", "60", "7")
    x, sr = sf.read(io.BytesIO(r.content))
    assert sr == 16000 and len(x) == 8000 and np.abs(x).max() > 0.1
    again = client.post("/api/audio/note", json={"model": m["name"], "family": "brass", "pitch": 60, "seed": 7})
    assert again.content == r.content  # the seed makes the take
    for body, words in (({"family": "tuba"}, "unknown condition"), ({"pitch": hi + 1}, str(hi)),
                        ({"pitch": 200}, "pitch"), ({"temperature": -1}, "temperature")):
        bad = client.post("/api/audio/note", json={"model": m["name"], **body})
        assert bad.status_code == 422 and words in bad.json()["detail"], (body, bad.json())
    assert client.post("/api/audio/note", json={"model": "nope"}).status_code == 422


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")
def test_pick_family_and_key_hear_and_download(run, tmp_path):
    from playwright.async_api import async_playwright

    from tunesmith.serve.app import create_app

    async def main(url):
        async with async_playwright() as pw:
            browser, page, problems = await _open(pw, url)
            try:
                await page.goto(url + "/")
                await page.wait_for_selector("#au-keys .au-key", timeout=30_000)
                assert await page.is_visible("#audio-panel")
                assert "audio panel" in await page.text_content("#kind")
                assert not await page.is_visible("#roll") and not await page.is_visible("#download-midi")
                await page.select_option("#au-family", "flute")
                await page.wait_for_function("window.tunesmith.audio.notes === 1", timeout=30_000)
                await page.click("#au-keys .au-key[data-pitch='62']")
                await page.wait_for_function("window.tunesmith.audio.notes === 2", timeout=30_000)
                made = await page.evaluate("window.tunesmith.audio.made")
                assert made["family"] == "flute" and made["pitch"] == 62
                assert await page.evaluate("document.querySelector('#au-keys .on').dataset.pitch") == "62"
                assert await page.evaluate("document.getElementById('au-player').src.startsWith('blob:')")
                async with page.expect_download() as dl:
                    await page.click("#au-download")
                d = await dl.value
                assert d.suggested_filename.endswith(f"-flute-62-{made['seed']}.wav")
                await d.save_as(tmp_path / "n.wav")
                x, sr = sf.read(tmp_path / "n.wav")
                assert sr == 16000 and len(x) == 8000
                assert "error" not in (await page.get_attribute("#status", "class") or "")
                assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                assert not problems, problems
            finally:
                await browser.close()

    with LiveServer(create_app([str(run)])) as srv:
        asyncio.run(main(srv.url))
