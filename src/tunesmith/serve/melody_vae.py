"""The melody VAE in the web page: attribute sliders and interpolation between two melodies.

* ``POST /api/melody-vae/decode`` -- latent slider values (as ``/api/generate``) plus attribute slider values
  (``{"note_density": 1.5, ...}``, in standard deviations of the codes along each attribute vector) -> the
  decoded phrase's notes.
* ``GET /api/melody-vae/songs?model=NAME`` -- the held-out songs a user can pick as A or B.
* ``POST /api/melody-vae/interpolate`` -- A and B (a held-out song's index, or notes such as an uploaded
  MIDI's) and ``t`` in [0, 1] -> the phrase decoded from ``(1 - t) z_A + t z_B`` (each code is its first
  phrase's posterior mean).

* ``POST /api/melody-vae/sample`` -- a conditioned melody VAE (trained with ``data.condition``): a new phrase from
  the prior for ``condition`` (``"metre=3/4,mode=minor"``; a kind left out is free) with classifier-free
  ``guidance``, at the run's sampling temperature (docs/conditioning.md "Melody VAE").

``GET /api/models`` lists, for a melody VAE, ``attributes`` ([{name, label}]) and ``interpolate: true``; for a
conditioned one also ``vae_conditions`` ({kind: [values]}) and ``vae_guidance`` (the run's default scale per kind).
"""
from __future__ import annotations

import math
import threading
import time
from typing import Optional, Union

import torch
from fastapi import APIRouter, HTTPException, Request
from pydantic import Field, field_validator

from .app import SLIDER_LIMIT, TEMPO_RANGE, Note, Strict, entry_of, score_to_json, seed_or_fresh

router = APIRouter()
MAX_SONGS = 100
_songs_lock = threading.Lock()
_songs: dict[str, list] = {}


def _is_vae(entry) -> bool:
    return entry.cfg.model.get("name") == "melody_vae"


def model_options(entry) -> dict:
    if not _is_vae(entry):
        return {}
    from ..models.melody_vae import ATTRIBUTE_LABELS, ATTRIBUTES

    out = {"attributes": [{"name": a, "label": ATTRIBUTE_LABELS[a]} for a in ATTRIBUTES],
           "attribute_range": SLIDER_LIMIT, "interpolate": True}
    groups = getattr(entry.codec, "label_groups", None) if getattr(entry.model, "label_kinds", None) else None
    if groups:   # a conditioned melody VAE: its labels by kind and the default guidance scale
        out["vae_conditions"] = {k: [entry.codec.vocab[i][len(k) + 2:-1] for i in ids] for k, ids in groups.items()}
        scales = entry.model.guidance_scales(entry.cfg.sample.get("guidance", 1.0))
        out["vae_guidance"] = dict(zip(entry.model.label_kinds, scales))
    return out


def _entry(request: Request, name: str):
    return entry_of(request.app.state.entries, name, _is_vae, "model {e.name} is not a melody VAE")


def _check(values, what):
    for x in values:
        if not math.isfinite(x) or abs(x) > SLIDER_LIMIT:
            raise ValueError(f"{what} values must be finite and within +-{SLIDER_LIMIT:g}")


class DecodeRequest(Strict):
    model: str = Field(max_length=64)
    sliders: Optional[list[float]] = Field(None, max_length=100, description="latent slider values (std units)")
    attributes: dict[str, float] = Field(default_factory=dict, description="attribute slider values (std units)")
    tempo: float = Field(120.0, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1])

    @field_validator("sliders")
    @classmethod
    def _s(cls, v):
        if v is not None:
            _check(v, "slider")
        return v

    @field_validator("attributes")
    @classmethod
    def _a(cls, v):
        if len(v) > 16:
            raise ValueError("at most 16 attributes")
        _check(v.values(), "attribute")
        return v


class Melody(Strict):
    song: Optional[int] = Field(None, ge=0, lt=MAX_SONGS, description="index into GET /api/melody-vae/songs")
    notes: Optional[list[Note]] = Field(None, max_length=4000, description="notes in beats (e.g. an uploaded MIDI)")


class InterpolateRequest(Strict):
    model: str = Field(max_length=64)
    a: Melody
    b: Melody
    t: float = Field(0.5, ge=0.0, le=1.0, description="0 = A, 1 = B")
    tempo: float = Field(120.0, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1])


class SampleRequest(Strict):
    model: str = Field(max_length=64)
    condition: Optional[str] = Field(None, max_length=64, description="e.g. metre=3/4,mode=minor (a kind left out is free)")
    guidance: Optional[Union[float, str]] = Field(None, description="classifier-free guidance: one scale (1 = plain "
                                                  "conditional) or per kind, e.g. metre=1.5,mode=5")

    @field_validator("guidance")
    @classmethod
    def _g(cls, v):
        if isinstance(v, str) and len(v) > 64:
            raise ValueError("at most 64 characters")
        if isinstance(v, float) and not (math.isfinite(v) and 0 <= v <= 20):
            raise ValueError("a guidance scale is a number from 0 to 20")
        return v
    seed: Optional[int] = Field(None, ge=0, lt=2**31)
    tempo: float = Field(120.0, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1])


def heldout_songs(entry) -> list:
    """The first held-out songs of the model's dataset (cached per dataset)."""
    ds = str(entry.cfg.data.get("dataset", "essen-erk"))
    with _songs_lock:
        if ds not in _songs:
            from ..data.corpora import CORPORA
            from ..data.essen import prepared_songs

            if ds not in CORPORA:
                _songs[ds] = []
            else:
                _songs[ds] = prepared_songs(ds, verbose=False)[1][:MAX_SONGS]
        return _songs[ds]


@router.get("/api/melody-vae/songs", summary="Melody VAE: held-out songs to interpolate between")
def songs(request: Request, model: str):
    e = _entry(request, model)
    return [{"index": i, "title": (s.title or f"song {i}")[:60], "beats": round(float(s.length), 2)}
            for i, s in enumerate(heldout_songs(e))]


def _done(e, score, tempo, t0, **extra):
    out = score_to_json(score, tempo)
    return {"model": e.name, **out, **extra, "ms": round((time.perf_counter() - t0) * 1000, 2)}


@router.post("/api/melody-vae/decode", summary="Melody VAE: decode latent + attribute slider values")
def decode(req: DecodeRequest, request: Request):
    t0 = time.perf_counter()
    e = _entry(request, req.model)
    from ..models.melody_vae import ATTRIBUTES

    bad = [k for k in req.attributes if k not in ATTRIBUTES]
    if bad:
        raise HTTPException(422, f"unknown attribute {bad[0][:40]!r}; known: {', '.join(ATTRIBUTES)}")
    if req.sliders is not None and len(req.sliders) > e.model.n_sliders:
        raise HTTPException(422, f"{len(req.sliders)} slider values; model {e.name} has {e.model.n_sliders}")
    with e.lock, torch.inference_mode():
        z = e.model.slider_z(req.sliders, 1, req.attributes)
        score = e.codec.decode(e.model.decode(z)[0], tempo=req.tempo)
    return _done(e, score, req.tempo, t0, sliders=req.sliders, attributes=req.attributes)


def _melody(e, m: Melody):
    from ..data.notes import Score

    if (m.song is None) == (m.notes is None):
        raise HTTPException(422, "give a melody as either a song index or notes")
    if m.song is not None:
        songs_ = heldout_songs(e)
        if m.song >= len(songs_):
            raise HTTPException(422, f"song index {m.song} out of range (0..{len(songs_) - 1})")
        return songs_[m.song]
    if not m.notes:
        raise HTTPException(422, "the melody has no notes")
    return Score(pitch=[x.p for x in m.notes], start=[x.s for x in m.notes], duration=[x.d for x in m.notes])


@router.post("/api/melody-vae/interpolate", summary="Melody VAE: a phrase between melodies A and B")
def interpolate(req: InterpolateRequest, request: Request):
    t0 = time.perf_counter()
    e = _entry(request, req.model)
    a, b = _melody(e, req.a), _melody(e, req.b)
    with e.lock, torch.inference_mode():  # each melody is moved to C major / A minor, as the training songs were
        za, zb = (e.model.encode_score(e.codec, x) for x in (a, b))
        z = ((1 - req.t) * za + req.t * zb)[None]   # codes of real melodies: not a slider position
        score = e.codec.decode(e.model.decode(z, slider=False)[0], tempo=req.tempo)
    return _done(e, score, req.tempo, t0, t=req.t)


@router.post("/api/melody-vae/sample", summary="Conditioned melody VAE: a new phrase in the asked metre and mode")
def sample(req: SampleRequest, request: Request):
    t0 = time.perf_counter()
    e = _entry(request, req.model)
    if not getattr(e.model, "label_kinds", None):
        raise HTTPException(422, f"model {e.name} was trained without condition labels")
    seed = seed_or_fresh(req.seed)
    guidance = req.guidance if req.guidance is not None else e.cfg.sample.get("guidance", 1.0)
    temperature = e.cfg.sample.get("temperature")
    with e.lock, torch.inference_mode():   # an unknown label is a TunesmithError: the app answers 422
        gen = torch.Generator(device="cpu").manual_seed(seed)
        score = e.model.generate(e.codec, 1, generator=gen, temperature=temperature, tempo=req.tempo,
                                 condition=req.condition or None, guidance=guidance if req.condition else 1.0)[0]
    return _done(e, score, req.tempo, t0, seed=seed, condition=req.condition or None, guidance=guidance)
