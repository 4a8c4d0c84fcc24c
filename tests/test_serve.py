"""The web app's JSON API: models, generation, validation, downloads, limits and parallel requests."""
from __future__ import annotations

import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

from tunesmith.config import Config, TrainConfig
from tunesmith.data.midi import read_midi
from tunesmith.data.notes import Score
from tunesmith.errors import TunesmithError
from tunesmith.training.trainer import train

VAE_CFG = dict(
    data=dict(encoding="pianoroll", dataset="essen-small", pitches=24, bars=4, steps_per_bar=16, augment=[0, 1],
              val_fraction=0.0),
    model=dict(name="vae", latent_dim=8, hidden=64, bar_hidden=64, bar_code=16, n_sliders=6, dropout=0.0,
               output="softmax", beta=0.1))
LSTM_CFG = dict(
    data=dict(encoding="timestep", dataset="essen-small", seq_len=16, val_fraction=0.1),
    model=dict(name="melody_lstm", hidden=32),
    sample=dict(primer="67 _ 67 _", temperature=1.0, steps=64, tempo=120))


def make_runs(root: Path, vae_steps: int = 80, vae_model: dict | None = None) -> dict[str, Path]:
    """A tiny VAE run and a tiny melody-LSTM run (a few seconds on one core); ``vae_model`` overrides
    entries of the VAE's model section (e.g. 20 sliders)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        vae = {**VAE_CFG, "model": {**VAE_CFG["model"], **(vae_model or {})}}
        for name, c, steps in (("vae", vae, vae_steps), ("lstm", LSTM_CFG, 10)):
            cfg = Config(name=name, data=c["data"], model=c["model"], sample=c.get("sample", {}),
                         train=TrainConfig(batch_size=8, lr=3e-3, log_every=10, checkpoint_every=10_000, seed=0,
                                           num_threads=1))
            train(cfg, root / name, device="cpu", max_steps=steps, progress=False)
            runs[name] = root / name
        return runs
    finally:
        torch.set_num_threads(n)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn in a background thread on 127.0.0.1 and a free port."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        t0 = time.time()
        while not self.server.started:
            if time.time() - t0 > 20:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("serve_runs"))


@pytest.fixture(scope="module")
def app(runs):
    from tunesmith.serve.app import create_app

    return create_app([runs["vae"], runs["lstm"]])


@pytest.fixture(scope="module")
def client(app):
    import warnings

    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient

    with TestClient(app) as c:
        yield c


def test_models_listed_with_their_controls(client):
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert set(models) == {"vae", "lstm"}
    assert models["vae"]["kind"] == "vae" and models["vae"]["sliders"] == 6 and models["vae"]["beats"] == 16.0
    assert models["lstm"]["kind"] == "lstm" and models["lstm"]["primer"] == "67 _ 67 _"
    # the declared controls (models/controls.py), the same list `tunesmith sample RUN --help-model` prints
    from tunesmith.models.controls import controls

    for name in ("vae", "lstm"):
        listed = {c["name"]: c for c in models[name]["controls"]}
        assert listed and all(c["meaning"] is not None and c["type"] for c in listed.values())
        assert list(listed) == [c.name for c in controls(client.app.state.entries[name].model)]
    lstm = {c["name"]: c for c in models["lstm"]["controls"]}
    assert {"primer", "temperature", "top_k", "steps"} <= set(lstm)
    assert lstm["primer"]["default"] == "67 _ 67 _" and "softmax" in lstm["temperature"]["meaning"]
    assert "sliders" in {c["name"] for c in models["vae"]["controls"]}


def test_vae_sliders_decide_the_piece(client):
    a = client.post("/api/generate", json={"model": "vae", "sliders": [0.5, -1, 0, 0, 0, 0]}).json()
    b = client.post("/api/generate", json={"model": "vae", "sliders": [0.5, -1, 0, 0, 0, 0]}).json()
    assert a["notes"] == b["notes"] and len(a["notes"]) > 0 and a["sliders"] == [0.5, -1, 0, 0, 0, 0]
    assert all(set(n) == {"p", "s", "d", "v"} and n["d"] > 0 for n in a["notes"])
    others = [client.post("/api/generate", json={"model": "vae", "sliders": [3.0 * s] + [0] * i}).json()["notes"]
              for i, s in ((0, 1), (2, -1), (4, 1))]
    assert any(o != a["notes"] for o in others)
    # no sliders: random ones (reproducible by seed), returned so the page can show them
    r1 = client.post("/api/generate", json={"model": "vae", "seed": 7}).json()
    r2 = client.post("/api/generate", json={"model": "vae", "seed": 7}).json()
    assert r1["sliders"] == r2["sliders"] and len(r1["sliders"]) == 6 and max(map(abs, r1["sliders"])) <= 3
    assert r1["notes"] == r2["notes"]
    # fewer values than sliders: the rest stay at 0
    assert client.post("/api/generate", json={"model": "vae", "sliders": [0.5, -1]}).json()["notes"] == a["notes"]


def test_lstm_primer_temperature_and_seed(client):
    body = {"model": "lstm", "primer": "67 _ 69 _", "temperature": 0.8, "steps": 48, "seed": 3, "tempo": 90}
    a = client.post("/api/generate", json=body).json()
    b = client.post("/api/generate", json=body).json()
    assert a["notes"] == b["notes"] and a["tempo"] == 90
    assert [n["p"] for n in a["notes"][:2]] == [67, 69]
    r = client.post("/api/generate", json={**body, "primer": "67 _ 999"})
    assert r.status_code == 422 and "'999' is not one this model knows" in r.json()["detail"]


@pytest.mark.parametrize("body", [
    {"model": "vae", "sliders": [3.5]},                       # out of range
    {"model": "vae", "sliders": []},                          # no values (was a 500)
    {"model": "vae", "sliders": [0.0] * 7},                   # more values than sliders
    {"model": "vae", "sliders": [0.0] * 101},                 # far too many
    {"model": "nope"},                                        # not loaded
    {"model": "../../etc/passwd"},                            # no path ever reaches the filesystem
    {"model": "vae", "tempo": 5},
    {"model": "vae", "tempo": 1000},
    {"model": "vae", "seed": -1},
    {"model": "vae", "colour": "red"},                        # unknown field
    {"model": "vae", "primer": "60 _"},                       # option of another kind of model
    {"model": "vae", "condition": "3/4"},                     # not conditional
    {"model": "lstm", "sliders": [0.1]},
    {"model": "lstm", "steps": 100000},
    {"model": "lstm", "temperature": 0},
    {"model": "lstm", "primer": "60 " * 200},                 # too long
    {"sliders": [0]},                                         # no model
])
def test_invalid_requests_are_rejected(client, body):
    r = client.post("/api/generate", json=body)
    assert r.status_code == 422, r.text


def test_non_finite_and_oversized_bodies(client):
    r = client.post("/api/generate", content=b'{"model": "vae", "sliders": [NaN]}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.post("/api/midi", content=b"[" + b"1," * 200_000 + b"1]", headers={"content-type": "application/json"})
    assert r.status_code == 413
    too_many = {"notes": [{"p": 60, "s": 0, "d": 0.5}] * 20001, "tempo": 120}
    assert client.post("/api/midi", json=too_many).status_code in (413, 422)
    for bad in ({"p": 128, "s": 0, "d": 1}, {"p": 60, "s": -1, "d": 1}, {"p": 60, "s": 0, "d": 0}):
        assert client.post("/api/midi", json={"notes": [bad]}).status_code == 422


def test_midi_and_wav_downloads(client, tmp_path):
    piece = client.post("/api/generate", json={"model": "vae", "sliders": [1.0], "tempo": 100}).json()
    r = client.post("/api/midi", json={"notes": piece["notes"], "tempo": 100})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/midi"
    assert "attachment" in r.headers["content-disposition"]
    (tmp_path / "x.mid").write_bytes(r.content)
    back = read_midi(tmp_path / "x.mid")
    assert [(p, round(s, 3), round(d, 3)) for p, s, d in back.notes()] == \
        sorted([(n["p"], round(n["s"], 3), round(n["d"], 3)) for n in piece["notes"]], key=lambda t: (t[1], -t[0]))
    assert back.tempo == pytest.approx(100, rel=1e-3)
    import soundfile as sf

    w = client.post("/api/wav", json={"notes": piece["notes"][:8], "tempo": 100})
    assert w.status_code == 200 and w.headers["content-type"] == "audio/wav"
    x, sr = sf.read(io.BytesIO(w.content))
    assert sr > 0 and len(x) > sr * 0.5 and abs(x).max() > 0.1


def test_page_docs_and_headers(client):
    page = client.get("/")
    assert page.status_code == 200 and "piano roll" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/docs").status_code == 200 and "openapi.json" in client.get("/docs").text
    spec = client.get("/openapi.json").json()
    assert {"/api/models", "/api/generate", "/api/midi", "/api/wav"} <= set(spec["paths"])
    assert client.get("/static/../app.py").status_code == 404
    # offline: the shipped page loads nothing from another host
    from tunesmith.serve.app import STATIC

    for f in STATIC.rglob("*"):
        if not f.is_file() or "vendor" in f.relative_to(STATIC).parts:
            continue  # vendored libraries name their home pages; the browser test fails on any offsite request
        text = f.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")  # a namespace, not a download
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f.name


def test_generic_models_and_errors(runs):
    from starlette.testclient import TestClient

    from tunesmith.serve.app import Entry, create_app

    class Dummy:  # a GAN-like model: generate(codec, n, generator) and nothing else
        def generate(self, codec, n, generator=None):
            p = int(torch.randint(50, 70, (1,), generator=generator))
            return [Score.from_notes([(p, 0.0, 1.0), (p + 2, 1.0, 1.0)]) for _ in range(n)]

    e = Entry("gan", "-", Dummy(), None, None, {}, "generic", {"family": "dummy", "labels": [], "tempo": 120.0})
    with TestClient(create_app(entries={"gan": e})) as c:
        a = c.post("/api/generate", json={"model": "gan", "seed": 5}).json()
        assert a["kind"] == "generic" and len(a["notes"]) == 2
        assert c.post("/api/generate", json={"model": "gan", "seed": 5}).json()["notes"] == a["notes"]
        assert c.post("/api/generate", json={"model": "gan", "sliders": [1]}).status_code == 422
    from tunesmith.serve.app import create_app as ca

    with pytest.raises(TunesmithError):
        ca([runs["vae"].parent / "missing"])
    with pytest.raises(TunesmithError):
        ca([])


def test_serve_defaults_to_loopback():
    import inspect

    from tunesmith.cli import build_parser
    from tunesmith.serve.app import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert build_parser().parse_args(["serve", "r"]).host == "127.0.0.1"


def test_parallel_requests_never_mix(app):
    """Many requests at once on a real server: each answer equals the answer to the same request alone."""
    bodies = []
    for i in range(12):
        bodies.append({"model": "vae", "sliders": [((i * 7) % 13 - 6) / 2.0, (i % 5 - 2) * 1.0, 0.5]})
        bodies.append({"model": "lstm", "seed": i, "steps": 40, "temperature": 1.2})
    with LiveServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        alone = [c.post("/api/generate", json=b).json()["notes"] for b in bodies]
        assert len({json.dumps(a) for a in alone}) > len(bodies) // 2  # the requests really differ

        def call(b):
            with httpx.Client(base_url=srv.url, timeout=30) as cc:
                return cc.post("/api/generate", json=b).json()["notes"]

        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(call, bodies * 2))
    assert together == alone * 2
