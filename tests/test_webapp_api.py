"""The web app's API as issue 14 left it: one-sentence 422s, bounded WAV renders, MIDI import, model titles,
feature routers plugged in without editing app.py."""
from __future__ import annotations

import threading
import types
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import APIRouter, Request

from test_serve import make_runs  # noqa: E402  (tests/ is on sys.path under pytest)


pytestmark = pytest.mark.filterwarnings("ignore:.*httpx2.*")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("webapp_runs"), vae_steps=40)


@pytest.fixture(scope="module")
def client(runs):
    import warnings

    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient

    from tunesmith.serve.app import create_app

    with TestClient(create_app([runs["vae"], runs["lstm"]])) as c:
        yield c


def melody_bytes(notes, tempo=100.0) -> bytes:
    import tempfile
    from pathlib import Path

    from tunesmith.data.midi import write_midi
    from tunesmith.data.notes import Score

    with tempfile.TemporaryDirectory() as d:
        return write_midi(Score.from_notes(notes, tempo=tempo), Path(d) / "m.mid").read_bytes()


TUNE = [(p, 0.5 * i, 0.5) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69])] + [(67, 4.0, 2.0)]


def test_empty_sliders_are_a_422_sentence_not_a_500(client):
    r = client.post("/api/generate", json={"model": "vae", "sliders": []})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("sliders: ") and "at least 1" in r.json()["detail"]


def test_every_refusal_is_one_short_sentence(client):
    bad = [("/api/generate", {"model": "lstm", "primer": "6O" * 200}),
           ("/api/generate", {"model": "lstm", "steps": 0}),
           ("/api/generate", {"model": "nope"}),
           ("/api/generate", {"model": "vae", "sliders": [float(9)]}),
           ("/api/midi", {"notes": [{"p": 200, "s": 0, "d": 1}]}),
           ("/api/import?model=lstm", b"not a midi file at all")]
    for path, body in bad:
        r = client.post(path, **({"content": body} if isinstance(body, bytes) else {"json": body}))
        assert r.status_code == 422, (path, body, r.text)
        d = r.json()["detail"]
        assert isinstance(d, str) and 0 < len(d) <= 200 and "\n" not in d and "6O" * 6 not in d, d
    d = client.post("/api/generate", json={"model": "lstm", "primer": "60 _ x"}).json()["detail"]
    assert "'x'" in d and "middle C" in d


def test_models_are_named_and_described(client):
    models = {m["name"]: m for m in client.get("/api/models").json()}
    # the run's config name and, with no description in it, what it is and what it learnt from
    assert models["vae"]["title"] == "vae" and "essen-small" in models["vae"]["description"]
    assert models["lstm"]["step"] == 0.25 and models["lstm"]["pitch_range"][0] < 67 < models["lstm"]["pitch_range"][1]
    assert models["vae"]["encode"] is True and models["vae"]["piece_beats"] == 16.0
    assert models["lstm"]["piece_beats"] == (2000 + 400) * 0.25


def test_zoo_card_gives_the_title(monkeypatch, runs):
    from tunesmith.serve import app as appmod

    import tunesmith.zoo as zoo

    monkeypatch.setattr(zoo, "card", lambda name: {"title": "Folk tunes LSTM", "description": "Continues a melody."})
    monkeypatch.setattr(zoo, "is_zoo", lambda r: True)
    from tunesmith.config import Config

    d = appmod._describe("zoo:x", Config(name="essen_lstm"), {"step": 500}, "melody_lstm", "lstm")
    assert d == {"title": "Folk tunes LSTM", "description": "Continues a melody.", "trained_steps": 500}


def test_wav_length_is_capped_by_the_models_piece_length(client):
    # the longest piece here is the LSTM's: (2000 steps + 400 primer symbols) x 0.25 beats = 600 beats
    r = client.post("/api/wav", json={"notes": [{"p": 60, "s": 599, "d": 4}], "tempo": 300})
    assert r.status_code == 422 and "600 beats" in r.json()["detail"]
    r = client.post("/api/wav", json={"notes": [{"p": 60, "s": 400, "d": 1}], "tempo": 120})  # 200 s
    assert r.status_code == 422 and "180 seconds" in r.json()["detail"]


def test_vae_only_server_caps_wav_at_its_piece(runs):
    from starlette.testclient import TestClient

    from tunesmith.serve.app import create_app

    with TestClient(create_app([runs["vae"]])) as c:
        r = c.post("/api/wav", json={"notes": [{"p": 60, "s": 16, "d": 1}], "tempo": 120})
        assert r.status_code == 422 and "16 beats" in r.json()["detail"]


def test_renders_per_client_are_bounded(client, monkeypatch):
    import tunesmith.sampling.render as render

    gate, started = threading.Event(), threading.Semaphore(0)

    def slow_render(mid, wav, sample_rate=22050):
        started.release()
        gate.wait(10)
        from tunesmith.sampling.render import synth_numpy, write_wav
        from tunesmith.data.midi import read_midi

        return write_wav(synth_numpy(read_midi(mid), sample_rate), sample_rate, wav)

    monkeypatch.setattr(render, "render_midi", slow_render)
    body = {"notes": [{"p": 60, "s": 0, "d": 1}], "tempo": 120}
    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(client.post, "/api/wav", json=body) for _ in range(2)]
        assert started.acquire(timeout=10) and started.acquire(timeout=10)
        third = client.post("/api/wav", json=body)
        assert third.status_code == 429 and "already running" in third.json()["detail"]
        gate.set()
        assert [f.result().status_code for f in running] == [200, 200]
    assert client.post("/api/wav", json=body).status_code == 200       # the client's count went back to 0


def test_import_midi_as_primer_and_as_sliders(client):
    data = melody_bytes(TUNE)
    r = client.post("/api/import?model=lstm", content=data, headers={"content-type": "audio/midi"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["primer"] == "67 _ 69 _ 71 _ 72 _ 74 _ 72 _ 71 _ 69 _ 67 _ _ _ _ _ _ _"
    assert j["primer_beats"] == 6.0 and j["tempo"] == pytest.approx(100)
    assert [n["p"] for n in j["notes"]] == [67, 69, 71, 72, 74, 72, 71, 69, 67]
    # the primer continues: the generated piece starts with the melody
    g = client.post("/api/generate", json={"model": "lstm", "primer": j["primer"], "steps": 16, "seed": 1}).json()
    assert [n["p"] for n in g["notes"][:9]] == [67, 69, 71, 72, 74, 72, 71, 69, 67] and g["primed"]
    # a VAE: the melody's code projected on the sliders
    v = client.post("/api/import?model=vae", content=data).json()
    assert len(v["sliders"]) == 6 and any(x != 0 for x in v["sliders"]) and max(map(abs, v["sliders"])) <= 3
    # pitches out of the LSTM's range move by octaves into it
    low = client.post("/api/import?model=lstm", content=melody_bytes([(43, 0, 1), (45, 1, 1)])).json()
    assert low["primer"].split()[0::4] == ["55", "57"]


def test_import_refuses_what_is_not_a_melody(client):
    assert client.post("/api/import?model=vae", content=b"").status_code == 422
    assert client.post("/api/import?model=zzz", content=melody_bytes(TUNE)).status_code == 422
    r = client.post("/api/import?model=lstm", content=b"MThd" + b"\0" * 30)
    assert r.status_code == 422 and "MIDI" in r.json()["detail"]


def test_feature_routers_are_included(monkeypatch, runs):
    from starlette.testclient import TestClient

    from tunesmith.serve import app as appmod

    router = APIRouter()

    @router.get("/api/hello")
    def hello(request: Request):
        return {"models": sorted(request.app.state.entries)}

    mod = types.SimpleNamespace(router=router, model_options=lambda e: {"hello": e.kind == "vae"})
    monkeypatch.setattr(appmod, "feature_modules", lambda: [mod])
    with TestClient(appmod.create_app([runs["vae"]])) as c:
        assert c.get("/api/hello").json() == {"models": ["vae"]}
        assert c.get("/api/models").json()[0]["hello"] is True


def test_a_bug_is_a_500_sentence_not_a_traceback():
    from starlette.testclient import TestClient

    from tunesmith.serve.app import Entry, create_app

    class Broken:  # a model whose generate fails with an unexpected error
        def generate(self, codec, n, generator=None):
            raise RuntimeError("secret internal state " * 20)

    e = Entry("broken", "-", Broken(), None, None, {}, "generic", {"family": "x", "labels": [], "tempo": 120.0})
    with TestClient(create_app(entries={"broken": e}), raise_server_exceptions=False) as c:
        r = c.post("/api/generate", json={"model": "broken"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    d = r.json()["detail"]
    assert "RuntimeError" in d and "secret" not in d and len(d) < 120


def test_feature_routes_refuse_an_unknown_model_and_the_wrong_kind(client):
    """Every route that takes a model name answers 422 with one sentence: 'unknown model' naming what is
    loaded, or why this model cannot serve that route (serve/app.entry_of, shared by all of them)."""
    routes = [("/api/generate", {}), ("/api/import?model={m}", b"MThd"),
              ("/api/harmonize", {"soprano": 0}), ("/api/melody-vae/decode", {"sliders": [0.0]}),
              ("/api/audio/note", {"pitch": 60})]
    wrong = {"/api/harmonize": "is not a chorale harmoniser", "/api/melody-vae/decode": "is not a melody VAE",
             "/api/audio/note": "(lstm) does not make audio"}
    for path, body in routes:
        for model in ("nope", "lstm"):
            url = path.format(m=model)
            kw = {"content": body} if isinstance(body, bytes) else {"json": {"model": model, **body}}
            r = client.post(url, **kw)
            if model == "lstm" and path not in wrong:
                continue          # the LSTM serves generate and import
            assert r.status_code == 422, (url, r.text)
            d = r.json()["detail"]
            expect = "unknown model 'nope'; loaded: vae, lstm" if model == "nope" else f"model lstm {wrong[path]}"
            assert d == expect or d.startswith(expect), (url, d)
