"""The chorale harmoniser in the web page: pick a held-out soprano or upload a MIDI melody, get four voices.

* ``GET /api/harmonize/sopranos?model=NAME`` -- the 35 held-out chorales' sopranos: ``[{index, title, beats}]``.
* ``POST /api/harmonize`` -- ``{model, soprano: index | null, notes: [melody notes] | null, seed, temperature,
  gibbs_steps, tempo}`` -> ``{notes, voices: [[soprano], [alto], [tenor], [bass]], length, tempo, seed, ms}``.
  The soprano comes back exactly as given.
* ``POST /api/harmonize/upload?model=NAME&seed=S`` -- a MIDI file as the request body (its first track, or its
  top line, is the melody) -> the same answer.
* ``POST /api/harmonize/midi`` -- ``{voices, tempo}`` -> a MIDI file with one track per voice, soprano first.

``GET /api/models`` lists ``harmonize: true`` for a chorale harmoniser (model family ``coconet``).
"""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import Field

from ..errors import TunesmithError
from .app import MAX_BODY, TEMPO_RANGE, Note, Strict, entry_of, score_to_json, seed_or_fresh

router = APIRouter()
MAX_MELODY_BEATS = 256.0   # 64 bars of 4/4: about 20 s of CPU for 64 Gibbs steps
MAX_GIBBS = 200
_lock = threading.Lock()
_sopranos: list | None = None


def _is_harmoniser(entry) -> bool:
    return entry.kind == "chorale"     # the model's declared page_kind (models/base.py PAGE_KINDS)


def model_options(entry) -> dict:
    if not _is_harmoniser(entry):
        return {}
    return {"harmonize": True, "gibbs_steps": int(entry.cfg.sample.get("gibbs_steps", 64)),
            "max_melody_beats": MAX_MELODY_BEATS}


def sopranos() -> list:
    """The held-out chorales' soprano lines (Scores), parsed once."""
    global _sopranos
    with _lock:
        if _sopranos is None:
            from ..data.coconet_data import chorale_split

            _, val = chorale_split()
            out = []
            for sc in val:
                s = sc.select(sc.track == 0)
                s.title = sc.title
                out.append(s)
            _sopranos = out
        return _sopranos


def _entry(request: Request, name: str):
    return entry_of(request.app.state.entries, name, _is_harmoniser, "model {e.name} is not a chorale harmoniser")


class HarmonizeRequest(Strict):
    model: str = Field(max_length=64)
    soprano: Optional[int] = Field(None, ge=0, description="index of a held-out soprano (GET /api/harmonize/sopranos)")
    notes: Optional[list[Note]] = Field(None, max_length=4000, description="a melody to harmonise (one line)")
    seed: Optional[int] = Field(None, ge=0, le=2**31 - 1)
    temperature: Optional[float] = Field(None, ge=0.05, le=5.0)
    gibbs_steps: Optional[int] = Field(None, ge=1, le=MAX_GIBBS)
    tempo: float = Field(80.0, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1])


class VoicesRequest(Strict):
    voices: list[list[Note]] = Field(min_length=1, max_length=8)
    tempo: float = Field(80.0, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1])


def _harmonize(e, melody, seed: Optional[int], temperature: Optional[float], steps: Optional[int],
               tempo: float) -> dict:
    if len(melody) == 0:
        raise HTTPException(422, "the melody has no notes")
    if melody.length > MAX_MELODY_BEATS:
        raise HTTPException(422, f"the melody is {melody.length:.0f} beats long; the page harmonises at most "
                                 f"{MAX_MELODY_BEATS:.0f} (use tunesmith sample --melody for longer ones)")
    t0 = time.perf_counter()
    seed = seed_or_fresh(seed)
    steps = steps or int(e.cfg.sample.get("gibbs_steps", 64))
    temp = temperature or float(e.cfg.sample.get("temperature", 1.0))
    with e.lock, torch.inference_mode():
        gen = torch.Generator(device="cpu").manual_seed(seed)
        try:
            sc = e.model.harmonize(e.codec, melody, 1, gen, steps, temp, tempo=tempo,
                                   parallel_penalty=float(e.cfg.sample.get("parallel_penalty", 0.0)))[0]
        except TunesmithError as err:
            raise HTTPException(422, str(err)) from None
    out = score_to_json(sc, tempo)
    voices = [score_to_json(sc.select(sc.track == v), tempo)["notes"] for v in range(4)]
    return {"model": e.name, "seed": seed, "gibbs_steps": steps, "temperature": temp, **out, "voices": voices,
            "ms": round((time.perf_counter() - t0) * 1000, 1)}


@router.get("/api/harmonize/sopranos", summary="The held-out chorales' sopranos a user can harmonise")
def list_sopranos(request: Request, model: str):
    _entry(request, model)
    return [{"index": i, "title": s.title or f"chorale {i}", "beats": round(float(s.length), 3)}
            for i, s in enumerate(sopranos())]


@router.post("/api/harmonize", summary="Harmonise a melody (a held-out soprano or given notes) in four voices")
def harmonize(req: HarmonizeRequest, request: Request):
    from ..data.notes import Score

    e = _entry(request, req.model)
    if (req.soprano is None) == (req.notes is None):
        raise HTTPException(422, "give either soprano (an index) or notes (a melody), not both")
    if req.soprano is not None:
        sops = sopranos()
        if req.soprano >= len(sops):
            raise HTTPException(422, f"soprano must be 0..{len(sops) - 1}")
        melody = sops[req.soprano]
    else:
        n = req.notes
        melody = Score(pitch=[x.p for x in n], start=[x.s for x in n], duration=[x.d for x in n],
                       velocity=[x.v for x in n], tempo=req.tempo)
    return _harmonize(e, melody, req.seed, req.temperature, req.gibbs_steps, req.tempo)


@router.post("/api/harmonize/upload", summary="Harmonise the melody of a MIDI file (the request body)")
async def harmonize_upload(request: Request, model: str, seed: Optional[int] = None, tempo: Optional[float] = None):
    from ..data.midi import read_midi

    e = _entry(request, model)
    data = await request.body()
    if not data or len(data) > MAX_BODY:
        raise HTTPException(422, "send a MIDI file (at most 256 KiB) as the request body")
    if seed is not None and not 0 <= seed < 2**31:
        raise HTTPException(422, "seed must be in 0..2^31-1")
    with tempfile.TemporaryDirectory(prefix="tunesmith-") as d:
        p = Path(d) / "melody.mid"
        p.write_bytes(data)
        try:
            melody = e.codec.melody_line(read_midi(p))
        except TunesmithError as err:
            raise HTTPException(422, f"that file is not a readable MIDI melody ({err})") from None
    t = float(tempo) if tempo is not None else round(float(np.clip(melody.tempo or 80.0, *TEMPO_RANGE)), 2)
    if not TEMPO_RANGE[0] <= t <= TEMPO_RANGE[1]:
        raise HTTPException(422, f"tempo must be within {TEMPO_RANGE[0]:g}..{TEMPO_RANGE[1]:g}")
    return _harmonize(e, melody, seed, None, None, t)


@router.post("/api/harmonize/midi", summary="Voices as a MIDI file, one track per voice (download)",
             responses={200: {"content": {"audio/midi": {}}}})
def voices_midi(req: VoicesRequest):
    from ..data.midi import write_midi
    from ..data.notes import Score

    rows = [(n.p, n.s, n.d, n.v, v) for v, voice in enumerate(req.voices) for n in voice]
    if not rows:
        raise HTTPException(422, "no notes to write")
    sc = Score.from_notes(sorted(rows, key=lambda r: (r[1], r[4])), tempo=req.tempo, title="tunesmith chorale")
    sc.programs = {v: 0 for v in range(len(req.voices))}
    with tempfile.TemporaryDirectory(prefix="tunesmith-") as d:
        data = write_midi(sc, Path(d) / "chorale.mid").read_bytes()
    return Response(data, media_type="audio/midi",
                    headers={"Content-Disposition": 'attachment; filename="chorale.mid"'})
