"""``tunesmith serve RUN...``: a FastAPI app and a static page to play with trained models in a browser.

* The page (``static/``, shipped in the package) works offline: no CDN, all JavaScript is our own; audio
  is synthesised in the browser with the WebAudio API from the notes the API returns.
* The JSON API (documented at ``/docs``, schema at ``/openapi.json``):
  ``GET /api/models`` (each model with its declared sampling ``controls``, models/controls.py); ``POST /api/generate`` (notes of a new piece: VAE sliders / condition, LSTM
  primer / temperature / steps, or plain sampling); ``POST /api/midi`` and ``POST /api/wav`` (the notes the
  page is showing, as a file to download).
* Safety: binds 127.0.0.1 unless told otherwise; every field is validated by its schema (slider count and
  range, tempo, lengths, model names among those loaded); request bodies are capped at 256 KiB; no
  request value is ever used as a path (WAV files are rendered in a fresh temporary folder); each model
  has a lock and each request its own random generator, so concurrent requests never share state.
"""
from __future__ import annotations

import ipaddress
import math
import re
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from fastapi import Request  # module level: route signatures are resolved from this module's globals
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import TunesmithError

STATIC = Path(__file__).parent / "static"
MAX_BODY = 256 * 1024          # bytes per request
MAX_NOTES = 20000              # notes per piece (generated or uploaded for MIDI/WAV)
MAX_BEATS = 4096.0             # length of a piece in beats
MAX_STEPS = 2000               # LSTM steps per request
TEMPO_RANGE = (20.0, 300.0)
SLIDER_LIMIT = 3.0
WAV_MAX_SECONDS = 180.0        # audio per WAV request (FluidSynth: about 0.3 s of CPU per minute of audio)
RENDERS_AT_ONCE = 2            # WAV renders running at the same time (the rest wait in line)
RENDERS_PER_CLIENT = 2         # renders one client may have running or waiting; more get 429
BEATS_PER_BAR = 4.0
NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")
# the one inline <style> that the bundled abcjs 6.7.2 puts in its SVG (static/notation.js), allowed by its hash
STYLE_SRC = "style-src 'self' 'sha256-BCpnf71gZdCsSCHDzyB1RsBbZ0qQdqseK6v+yJsgg30='"


@dataclass
class Entry:
    name: str
    run: str
    model: Any
    codec: Any
    cfg: Any
    meta: dict
    kind: str
    options: dict
    lock: threading.Lock = field(default_factory=threading.Lock)


def seed_or_fresh(seed: int | None) -> int:
    """The request's seed, or a fresh one (returned to the page, so the piece can be drawn again)."""
    return seed if seed is not None else int(np.random.SeedSequence().entropy % (2**31))


def entry_of(entries: dict, name: str, accept=None, refusal: str = "") -> Entry:
    """The loaded model called ``name``: HTTP 422 when none is loaded under that name, or when
    ``accept(entry)`` is false (``refusal``, formatted with ``e`` = the entry, says why)."""
    from fastapi import HTTPException

    if name not in entries:
        raise HTTPException(422, f"unknown model {name[:64]!r}; loaded: {', '.join(entries)}")
    e = entries[name]
    if accept is not None and not accept(e):
        raise HTTPException(422, refusal.format(e=e))
    return e


def _kind(model) -> tuple[str, dict]:
    """The model's declared page kind (``page_kind``, models/base.py PAGE_KINDS); nothing is read off its
    attributes or signatures."""
    from ..models.base import PAGE_KINDS

    kind = getattr(type(model), "page_kind", "generic")
    if kind not in PAGE_KINDS:
        raise TunesmithError(f"{type(model).__name__}.page_kind is {kind!r}; use one of {', '.join(PAGE_KINDS)}")
    opts: dict[str, Any] = {}
    if kind == "vae":
        opts["sliders"] = int(model.n_sliders)
        opts["slider_range"] = SLIDER_LIMIT
    return kind, opts


def _control_names(model) -> set[str]:
    from ..models.controls import controls

    return {c.name for c in controls(model)}


def _controls(model, sample: dict, codec=None) -> list[dict]:
    """The model's declared sampling controls (models/controls.py), with the run's [sample] defaults; a choice
    control (a conditioned model's ``condition``) lists its ``choices``."""
    from ..models.controls import controls

    def plain(v):
        return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)
    return [{"name": c.name, "type": c.type, "default": plain(sample.get(c.name, c.default)), "range": c.range,
             "meaning": c.meaning, **({"choices": list(c.choices)} if c.choices else {})}
            for c in controls(model, codec)]


def load_entries(runs: list[str | Path]) -> dict[str, Entry]:
    from ..training.checkpoint import load_run
    from ..zoo import is_zoo

    if not runs:
        raise TunesmithError("give at least one run directory: tunesmith serve RUN [RUN...]")
    entries: dict[str, Entry] = {}
    for r in runs:
        model, codec, cfg, meta = load_run(r, "cpu")
        base = NAME_RE.sub("-", str(r)[4:] if is_zoo(r) else Path(r).resolve().name)[:40] or "model"
        name, i = base, 2
        while name in entries:
            name, i = f"{base}-{i}", i + 1
        kind, opts = _kind(model)
        opts["family"] = cfg.model.get("name", "")
        opts["labels"] = list(getattr(codec, "labels", []) or []) if getattr(model, "n_labels", 0) else []
        sample = dict(cfg.sample)
        if kind == "lstm":
            opts["primer"] = str(sample.get("primer", ""))[:400]
            opts["temperature"] = float(sample.get("temperature", 1.0))
            opts["steps"] = int(min(sample.get("steps", 256), MAX_STEPS))
        if kind == "vae":
            opts["beats"] = float(codec.beats)
            opts["threshold"] = float(codec.threshold)
            opts["output"] = getattr(model, "output", "sigmoid")
        opts["tempo"] = float(sample.get("tempo", getattr(codec, "tempo", 120.0)) or 120.0)
        opts["controls"] = _controls(model, sample, codec)
        groups = getattr(codec, "label_groups", None) if kind == "lstm" else None
        if groups:   # a conditioned melody model: its labels by kind, and the guidance scale
            opts["conditions"] = {k: [codec.vocab[i][len(k) + 2:-1] for i in ids] for k, ids in groups.items()}
            opts["guidance"] = float(sample.get("guidance", 1.0))
        opts.update(_describe(r, cfg, meta, opts["family"], kind))
        if kind == "lstm" and getattr(codec, "step", None) is not None:   # a codec with a primer text
            pitches = [int(s) for s in codec.vocab if str(s).isdigit()]
            opts["step"] = float(codec.step)           # beats per primer symbol
            opts["pitch_range"] = [min(pitches), max(pitches)] if pitches else [0, 127]
        if kind == "vae":
            opts["encode"] = True                      # POST /api/import places a melody on the sliders
        opts["piece_beats"] = _piece_beats(kind, codec, opts)
        entries[name] = Entry(name, str(r), model, codec, cfg, meta, kind, opts)
    return entries


def _describe(run, cfg, meta: dict, family: str, kind: str) -> dict:
    """Title and one-line description: the zoo model card's, else the run config's (``name``, ``description``)."""
    from ..zoo import card, is_zoo

    c = card(str(run)) if is_zoo(run) else {}
    title = str(c.get("title") or "").strip()
    desc = str(c.get("description") or getattr(cfg, "description", "") or "").strip()
    if not title:
        title = str(getattr(cfg, "name", "") or "").replace("_", " ").strip() or family or kind
    if not desc:
        data = cfg.data.get("dataset", "") if isinstance(getattr(cfg, "data", None), dict) else ""
        desc = f"{family or kind} model" + (f" trained on {data}" if data else "")
    steps = meta.get("step") if isinstance(meta, dict) else None
    return {"title": title[:80], "description": desc[:200], "trained_steps": int(steps) if isinstance(steps, int) else None}


def _sentence(msg: str, limit: int = 200) -> str:
    """One line, at most ``limit`` characters (an error never echoes a long input in full)."""
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= limit else msg[: limit - 1] + "\u2026"


def _check_primer(text: str, e: "Entry") -> None:
    """Say which primer symbol is wrong and what the symbols are (the codec's own message echoes it whole)."""
    known = set(map(str, e.codec.vocab))
    for tok in text.split():
        if tok not in known or tok == "/":
            lo, hi = e.options["pitch_range"]
            shown = tok if len(tok) <= 12 else tok[:10] + "\u2026"
            raise TunesmithError(f"primer symbol {shown!r} is not one this model knows: use MIDI pitches {lo}-{hi} "
                                 f"(60 = middle C), '_' to hold, 'r' for a rest")


def _piece_beats(kind: str, codec, opts: dict) -> float:
    """The longest piece this model makes through the API, in beats (the WAV length cap follows it)."""
    if kind == "vae":
        return float(opts["beats"])
    if kind == "lstm" and "step" in opts:
        return (MAX_STEPS + 400) * opts["step"]
    return 64 * BEATS_PER_BAR


# ------------------------------------------------------------------------------------------ notes <-> JSON
def score_to_json(score, tempo: float) -> dict:
    s = score.sorted()
    notes = [{"p": int(p), "s": round(float(a), 5), "d": round(float(d), 5), "v": int(v)}
             for p, a, d, v in zip(s.pitch, s.start, s.duration, s.velocity)]
    return {"notes": notes[:MAX_NOTES], "length": round(float(s.length), 5), "tempo": tempo,
            "truncated": len(notes) > MAX_NOTES}


# ------------------------------------------------------------------------------------------ request schemas
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateRequest(Strict):
    model: str = Field(description="name of a loaded model (see GET /api/models)", max_length=64)
    sliders: Optional[list[float]] = Field(None, min_length=1, max_length=100,
                                           description=f"VAE: slider values in standard deviations, "
                                                       f"each in [-{SLIDER_LIMIT:g}, {SLIDER_LIMIT:g}]")
    condition: Optional[str] = Field(None, max_length=64, description="conditional VAE: a label; conditioned "
                                     "melody model: labels such as metre=3/4,mode=minor")
    guidance: Optional[float] = Field(None, ge=0, le=20, description="conditioned melody model: classifier-free "
                                      "guidance scale (1 = plain conditional)")
    threshold: Optional[float] = Field(None, ge=0.01, le=0.99, description="VAE (sigmoid): note threshold")
    primer: Optional[str] = Field(None, max_length=400, description="LSTM: primer melody in the encoding's text")
    temperature: Optional[float] = Field(None, ge=0.05, le=5.0, description="LSTM: sampling temperature")
    steps: Optional[int] = Field(None, ge=1, le=MAX_STEPS, description="LSTM: steps to generate")
    seed: Optional[int] = Field(None, ge=0, le=2**31 - 1, description="random seed (reproducible output)")
    tempo: float = Field(120.0, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1], description="quarter notes per minute")

    @field_validator("sliders")
    @classmethod
    def _sliders(cls, v):
        if v is not None:
            for x in v:
                if not math.isfinite(x) or abs(x) > SLIDER_LIMIT:
                    raise ValueError(f"slider values must be finite and within +-{SLIDER_LIMIT:g}")
        return v


class Note(Strict):
    p: int = Field(ge=0, le=127, description="MIDI pitch")
    s: float = Field(ge=0, le=MAX_BEATS, description="onset in beats")
    d: float = Field(gt=0, le=64, description="duration in beats")
    v: int = Field(90, ge=1, le=127, description="velocity")


class NotesRequest(Strict):
    notes: list[Note] = Field(max_length=MAX_NOTES)
    tempo: float = Field(120.0, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1])


class GenerateResponse(BaseModel):
    model: str
    kind: str
    seed: int
    sliders: Optional[list[float]] = None
    primed: bool = False
    notes: list[dict]
    length: float
    tempo: float
    truncated: bool
    ms: float


# ------------------------------------------------------------------------------------------ feature modules
def feature_modules() -> list:
    """The ``serve/<feature>.py`` modules that plug into the app, in name order.

    Contract (no edit of this file needed): a module in this package that defines a module-level FastAPI
    ``router`` (``fastapi.APIRouter``) has its routes included by :func:`create_app`. Its handlers reach the
    loaded models through ``request.app.state.entries`` (``{name: Entry}``, the same objects the built-in routes
    use; hold ``entry.lock`` while running a model). Optionally it defines ``model_options(entry) -> dict``,
    merged into that model's ``GET /api/models`` entry (e.g. ``{"encode": True}``), so the page knows what each
    model offers. The page side is ``static/<feature>.js`` using the ``window.tunesmith`` hooks (see app.js).
    A module that fails to import stops the app with its own error: a broken feature is never silently skipped.
    """
    import importlib
    import pkgutil

    mods = []
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if info.name == "app" or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__package__}.{info.name}")
        if getattr(mod, "router", None) is not None:
            mods.append(mod)
    return mods


def create_app(runs: list[str | Path] | None = None, entries: dict[str, Entry] | None = None):
    from fastapi import FastAPI, HTTPException
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles

    entries = entries if entries is not None else load_entries(runs or [])
    names = list(entries)  # in the order given on the command line: the first is shown first

    app = FastAPI(title="tunesmith", version="1", docs_url=None, redoc_url=None,
                  description="Generate music with the trained models loaded by `tunesmith serve`. Notes are "
                              "{p: MIDI pitch, s: onset in beats, d: duration in beats, v: velocity}.")

    @app.middleware("http")
    async def limits_and_headers(request: Request, call_next):
        cl = request.headers.get("content-length")
        if cl is not None and (not cl.isdigit() or int(cl) > MAX_BODY):
            return JSONResponse({"detail": f"request body larger than {MAX_BODY} bytes"}, status_code=413)
        if request.method == "POST" and cl is None:
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    return JSONResponse({"detail": f"request body larger than {MAX_BODY} bytes"}, status_code=413)
            request._body = body
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data: blob:; "
                                                   "media-src 'self' blob:; connect-src 'self'; " + STYLE_SRC)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        return resp

    # Every refused request answers {"detail": one short sentence}; invalid input is always 422.
    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        # no echo of the input (it may be huge, or NaN, which JSON cannot carry)
        errs = [{"loc": [str(x) for x in e.get("loc", ()) if x != "body"], "msg": str(e.get("msg", ""))[:200]}
                for e in exc.errors()[:20]]
        first = errs[0] if errs else {"loc": [], "msg": "invalid request"}
        where = ".".join(x for x in first["loc"] if not x.isdigit()) or "request"
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        return JSONResponse({"detail": f"{where}: {first['msg']}{more}"[:200], "errors": errs}, status_code=422)

    @app.exception_handler(TunesmithError)
    async def _bad_input(request, exc: TunesmithError):
        return JSONResponse({"detail": _sentence(str(exc))}, status_code=422)

    @app.exception_handler(Exception)
    async def _bug(request, exc: Exception):   # a bug: one sentence for the page; the traceback goes to the log
        return JSONResponse({"detail": f"the server failed on this request ({type(exc).__name__}); "
                                       f"its log has the details"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _refused(request, exc: HTTPException):
        return JSONResponse({"detail": _sentence(str(exc.detail))}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return FileResponse(STATIC / "docs.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    features = feature_modules()

    def _model_info(e: Entry) -> dict:
        info = {"name": e.name, "kind": e.kind, **e.options}
        for mod in features:
            if hasattr(mod, "model_options"):
                info.update(mod.model_options(e) or {})
        return info

    @app.get("/api/models", summary="The loaded models and the controls each one takes")
    def models() -> list[dict]:
        return [_model_info(entries[n]) for n in names]

    @app.post("/api/generate", summary="Generate one piece; returns its notes", response_model=GenerateResponse)
    def generate(req: GenerateRequest):
        import time

        t0 = time.perf_counter()
        e = entry_of(entries, req.model)
        seed = seed_or_fresh(req.seed)
        if e.kind == "audio":
            raise HTTPException(422, f"model {e.name} makes audio, which the web app does not play yet")
        conditioned = e.kind == "lstm" and bool(e.options.get("conditions"))
        if e.kind != "vae" and (req.sliders is not None or req.threshold is not None or
                                (not conditioned and (req.condition is not None or req.guidance is not None))):
            raise HTTPException(422, f"model {e.name} ({e.kind}) takes no sliders, condition or threshold")
        if e.kind != "lstm" and (req.primer is not None or req.temperature is not None or req.steps is not None):
            raise HTTPException(422, f"model {e.name} ({e.kind}) takes no primer, temperature or steps")
        if e.kind == "lstm" and req.primer and e.options.get("pitch_range"):
            _check_primer(req.primer, e)
        with e.lock, torch.inference_mode():
            gen = torch.Generator(device="cpu").manual_seed(seed)
            used = None
            if e.kind == "vae":
                k = e.options["sliders"]
                if req.sliders is not None and len(req.sliders) > k:
                    raise HTTPException(422, f"{len(req.sliders)} slider values; model {e.name} has {k}")
                if req.condition is not None and req.condition not in e.options["labels"]:
                    raise HTTPException(422, f"unknown condition; model {e.name} knows: {e.options['labels'] or 'none'}")
                used = list(req.sliders) if req.sliders is not None else \
                    torch.randn(k, generator=gen).clamp(-SLIDER_LIMIT, SLIDER_LIMIT).tolist()
                cond = req.condition if req.condition is not None else (e.options["labels"][0] if e.options["labels"] else None)
                label = e.codec.label_index(cond) if cond is not None else None
                z = e.model.slider_z(used)
                roll = e.model.decode(z, label)[0].float().numpy()
                score = e.codec.decode(roll, threshold=req.threshold, tempo=req.tempo)
            elif e.kind == "lstm":
                params = _control_names(e.model)
                opts = {"primer": req.primer if req.primer is not None else e.options.get("primer") or None,
                        "temperature": req.temperature or e.options.get("temperature", 1.0),
                        "steps": req.steps or e.options.get("steps", 256), "tempo": req.tempo,
                        "condition": req.condition or None,
                        "guidance": req.guidance if req.guidance is not None else e.options.get("guidance")}
                opts = {k: v for k, v in opts.items() if k in params and v is not None}
                score = e.model.generate(e.codec, 1, generator=gen, **opts)[0]
            else:
                opts = {"tempo": req.tempo} if "tempo" in _control_names(e.model) else {}
                score = e.model.generate(e.codec, 1, generator=gen, **opts)[0]
        from ..models.base import Audio

        if isinstance(score, Audio):   # a model that makes audio but does not declare page_kind = "audio"
            raise HTTPException(422, f"model {e.name} makes audio, which the web app does not play yet")
        out = score_to_json(score, req.tempo)
        return {"model": e.name, "kind": e.kind, "seed": seed, "sliders": used, **out,
                "primed": bool(e.kind == "lstm" and (req.primer or e.options.get("primer"))),
                "ms": round((time.perf_counter() - t0) * 1000, 2)}

    def _score(req: NotesRequest):
        from ..data.notes import Score

        n = req.notes
        return Score(pitch=[x.p for x in n], start=[x.s for x in n], duration=[x.d for x in n],
                     velocity=[x.v for x in n], tempo=req.tempo, title="tunesmith")

    @app.post("/api/midi", summary="The given notes as a MIDI file (download)",
              responses={200: {"content": {"audio/midi": {}}}})
    def midi(req: NotesRequest):
        from ..data.midi import write_midi

        with tempfile.TemporaryDirectory(prefix="tunesmith-") as d:
            data = write_midi(_score(req), Path(d) / "piece.mid").read_bytes()
        return Response(data, media_type="audio/midi",
                        headers={"Content-Disposition": 'attachment; filename="tunesmith.mid"'})

    # WAV cost is bounded: length (the longest piece a loaded model makes, and WAV_MAX_SECONDS), renders at once
    # (RENDERS_AT_ONCE; the rest wait in line) and renders per client (RENDERS_PER_CLIENT running or waiting).
    wav_beats = max([e.options.get("piece_beats", 64.0) for e in entries.values()] + [16.0])
    renders = threading.BoundedSemaphore(RENDERS_AT_ONCE)
    per_client: dict[str, int] = {}
    clients_lock = threading.Lock()

    @app.post("/api/wav", summary="The given notes rendered to WAV with FluidSynth (download)",
              responses={200: {"content": {"audio/wav": {}}},
                         422: {"description": f"longer than the longest piece a loaded model makes "
                                              f"({wav_beats:g} beats) or than {WAV_MAX_SECONDS:g} s"},
                         429: {"description": f"more than {RENDERS_PER_CLIENT} renders from this client at once"}})
    def wav(req: NotesRequest, request: Request):
        from ..data.midi import write_midi
        from ..sampling.render import render_midi

        end = max((x.s + x.d for x in req.notes), default=0.0)
        if end > wav_beats + 1e-6:
            raise HTTPException(422, f"a WAV is at most {wav_beats:g} beats long (the longest piece these models "
                                     f"make); this one is {end:.4g}")
        if end * 60.0 / req.tempo > WAV_MAX_SECONDS:
            raise HTTPException(422, f"a WAV is at most {WAV_MAX_SECONDS:g} seconds long; this one is "
                                     f"{end * 60.0 / req.tempo:.0f} s at {req.tempo:g} bpm")
        who = request.client.host if request.client else "-"
        with clients_lock:
            if per_client.get(who, 0) >= RENDERS_PER_CLIENT:
                raise HTTPException(429, f"{RENDERS_PER_CLIENT} renders of yours are already running or waiting: "
                                         f"try again when one is done", headers={"Retry-After": "2"})
            per_client[who] = per_client.get(who, 0) + 1
        try:
            with renders, tempfile.TemporaryDirectory(prefix="tunesmith-") as d:
                mid = write_midi(_score(req), Path(d) / "piece.mid")
                data = render_midi(mid, Path(d) / "piece.wav", sample_rate=22050).read_bytes()
        finally:
            with clients_lock:
                per_client[who] -= 1
                if not per_client[who]:
                    del per_client[who]
        return Response(data, media_type="audio/wav",
                        headers={"Content-Disposition": 'attachment; filename="tunesmith.wav"'})

    @app.post("/api/import", summary="Bring a melody in: a MIDI file (the request body) read for one model",
              responses={200: {"description": "{notes, length, tempo, title, primer?, sliders?}: the melody as "
                                              "notes; for a primer model its first bars as primer text; for a "
                                              "VAE its code projected on the sliders"},
                         422: {"description": "not a readable MIDI file, no notes, or an unknown model"}})
    async def import_midi(request: Request, model: str):
        body = await request.body()
        entry_of(entries, model)
        if not body:
            raise HTTPException(422, "send the MIDI file as the request body")
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(import_melody, entries[model], body, wav_beats)

    app.state.entries = entries
    for mod in features:                 # serve/<feature>.py routers (see feature_modules)
        app.include_router(mod.router)
    return app


def import_melody(e: Entry, data: bytes, max_beats: float) -> dict:
    """A MIDI file's notes for the page; a primer in the model's text (LSTM); slider values (VAE)."""
    from ..data.midi import read_midi

    with tempfile.TemporaryDirectory(prefix="tunesmith-") as d:
        (Path(d) / "upload.mid").write_bytes(data)
        try:
            score = read_midi(Path(d) / "upload.mid").pitched()
        except TunesmithError:
            raise TunesmithError("that file is not a readable MIDI file") from None
    if len(score) == 0:
        raise TunesmithError("that MIDI file has no notes")
    keep = score.start < max_beats
    score = score.select(np.flatnonzero(keep))
    score.duration = np.minimum(score.duration, max_beats - score.start)
    tempo = float(min(max(score.tempo or 120.0, TEMPO_RANGE[0]), TEMPO_RANGE[1]))
    out = {"title": NAME_RE.sub(" ", "melody")[:40], **score_to_json(score, tempo)}
    if e.kind == "lstm" and "step" in e.options:
        out.update(_as_primer(score, e))
    if e.kind == "vae" and e.options.get("encode"):
        with e.lock, torch.inference_mode():
            label = e.codec.label_index(e.options["labels"][0]) if e.options["labels"] else None
            z = e.model.encode_score(e.codec, score, label)[None].float()
            k = e.options["sliders"]
            v = ((z - e.model.latent_mean) @ e.model.slider_basis[:k].T) / e.model.slider_scale[:k]
        out["sliders"] = [round(float(x), 2) for x in v[0].clamp(-SLIDER_LIMIT, SLIDER_LIMIT)]
    return out


def _as_primer(score, e: Entry) -> dict:
    """The melody's top voice, on the model's step grid, as primer text of at most 400 characters (whole
    symbols); pitches outside the model's vocabulary move by octaves, then to the nearest known pitch."""
    from ..data.timestep import encode_score

    step = e.options["step"]
    known = sorted(int(s) for s in e.codec.vocab if str(s).isdigit())
    mel = score.monophonic()
    lo, hi = known[0], known[-1]
    pitch = np.array(mel.pitch, dtype=int)
    while (pitch < lo).any() or (pitch > hi).any():
        if hi - lo < 12:
            break
        pitch = np.where(pitch < lo, pitch + 12, np.where(pitch > hi, pitch - 12, pitch))
    mel.pitch = np.array([min(known, key=lambda k: abs(k - p)) for p in pitch], dtype=mel.pitch.dtype)
    symbols, text = encode_score(mel, step), ""
    for tok in symbols:
        if len(text) + len(tok) + 1 > 400:
            break
        text = f"{text} {tok}" if text else tok
    n = len(text.split())
    return {"primer": text, "primer_beats": round(n * step, 5)}


def serve(runs: list[str], host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load the runs and serve the app (blocking)."""
    import uvicorn

    if not 0 < int(port) < 65536:
        raise TunesmithError(f"--port must be 1..65535, got {port}")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        print(f"warning: serving on {host}: anyone who can reach this machine can use the app", file=sys.stderr)
    app = create_app(runs)
    sock = _listen(host, int(port))  # bound before "open http://..." is printed: a busy port fails with one line
    print(f"tunesmith: {len(app.state.entries)} model(s) ({', '.join(app.state.entries)}); open "
          f"http://{host if loopback else host}:{port}/ (API docs at /docs)", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, host=host, port=int(port), log_level="warning")).run(sockets=[sock])


def _listen(host: str, port: int):
    """A socket bound to host:port for uvicorn. Binding here, not in uvicorn, turns a port in use into one
    line and exit 1 (uvicorn logs the OSError and exits 3 after we had printed the address)."""
    import errno
    import socket

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise TunesmithError(f"--host {host!r} is not an address of this machine ({e}): use e.g. 127.0.0.1") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart right after a stop
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise TunesmithError(f"port {port} on {host} is in use (another tunesmith serve?): stop that "
                                 f"program or choose another --port") from None
        raise TunesmithError(f"cannot listen on {host}:{port} ({e.strerror or e}): choose another --host "
                             "or --port") from None
    return sock
