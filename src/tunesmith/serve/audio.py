"""The audio panel of the web page: pick an instrument family and a pitch, hear the note, download the WAV.

For every loaded model whose declared ``page_kind`` is ``"audio"`` (the conditional CVAE/GAN of issue 13,
``zoo:audio-cvae``, and the seed-003 audio models), ``GET /api/models`` adds ``audio``: ``{families: [...],
pitch: true|false, pitch_range: [lo, hi] | null, sample_rate}``, read from the model's declared controls
(models/controls.py: ``condition`` = family, ``pitch`` = MIDI pitch) and its codec.

* ``POST /api/audio/note`` -- ``{model, family, pitch, seed, temperature}`` (all but ``model`` optional) ->
  the note as a 16-bit WAV (``audio/wav``), with the headers ``X-Tunesmith-Seed``, ``X-Tunesmith-Family`` and
  ``X-Tunesmith-Pitch`` saying what was made. A family or pitch the model does not know is a 422 with one
  sentence (the model's own error names the known ones / the trained range).
"""
from __future__ import annotations

import io
import time
from typing import Optional

import numpy as np
import torch
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import Field

from .app import Strict, entry_of, seed_or_fresh

router = APIRouter()
MAX_AUDIO_SECONDS = 8.0


def _controls(entry) -> set[str]:
    return {c["name"] for c in entry.options.get("controls", [])}


def model_options(entry) -> dict:
    if entry.kind != "audio":
        return {}
    names = _controls(entry)
    codec = entry.codec
    pr = getattr(codec, "pitch_range", None)
    has_pitch = "pitch" in names
    return {"audio": {"families": list(getattr(codec, "labels", []) or []) if "condition" in names else [],
                      "pitch": has_pitch, "pitch_range": [int(pr[0]), int(pr[1])] if has_pitch and pr else None,
                      "sample_rate": int(getattr(codec, "sample_rate", 16000))}}


class NoteRequest(Strict):
    model: str = Field(max_length=100)
    family: Optional[str] = Field(None, max_length=40, description="instrument family (the model's condition)")
    pitch: Optional[int] = Field(None, ge=0, le=127, description="MIDI pitch, for a pitch-conditioned model")
    seed: Optional[int] = Field(None, ge=0, lt=2**31)
    temperature: Optional[float] = Field(None, gt=0, le=5)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(samples, np.float32), -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@router.post("/api/audio/note", summary="One note of an audio model (family, pitch) as a WAV",
             responses={200: {"content": {"audio/wav": {}}}})
def note(req: NoteRequest, request: Request):
    e = entry_of(request.app.state.entries, req.model, lambda e: e.kind == "audio",
                 "model {e.name} ({e.kind}) does not make audio")
    names = _controls(e)
    kw = {}
    if req.family is not None:
        if "condition" not in names:
            raise HTTPException(422, f"model {e.name} takes no family")
        kw["condition"] = req.family
    if req.pitch is not None:
        if "pitch" not in names:
            raise HTTPException(422, f"model {e.name} takes no pitch (it is not pitch-conditioned)")
        kw["pitch"] = req.pitch
    if req.temperature is not None:
        if "temperature" not in names:
            raise HTTPException(422, f"model {e.name} takes no temperature")
        kw["temperature"] = req.temperature
    seed = seed_or_fresh(req.seed)
    t0 = time.perf_counter()
    with e.lock:
        clip = e.model.generate(e.codec, 1, generator=torch.Generator().manual_seed(seed), **kw)[0]
    x = np.nan_to_num(np.asarray(clip.samples, np.float32))[: int(MAX_AUDIO_SECONDS * clip.sample_rate)]
    family = req.family if req.family is not None else (clip.label or "")
    pitch = clip.pitch if getattr(clip, "pitch", -1) >= 0 else (req.pitch if req.pitch is not None else -1)
    return Response(wav_bytes(x, clip.sample_rate), media_type="audio/wav", headers={
        "X-Tunesmith-Seed": str(seed), "X-Tunesmith-Family": str(family), "X-Tunesmith-Pitch": str(pitch),
        "X-Tunesmith-Ms": f"{(time.perf_counter() - t0) * 1000:.0f}",
        "Content-Disposition": f'attachment; filename="tunesmith-{e.name}-{family or "note"}-{pitch}-{seed}.wav"'})
