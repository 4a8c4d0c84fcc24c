"""Sheet music for the web page: the notes on screen as ABC (rendered in the page by the bundled abcjs) and
as ABC / MusicXML downloads.

``POST /api/abc`` and ``POST /api/musicxml`` take the notes the page shows (the same schema as
``/api/midi``) plus an optional metre, pickup, key and title. Without a metre the model's own is used when
it has one (``GET /api/models`` lists it as ``metre``), else 4/4; without a key it is estimated from the
notes (Krumhansl-Schmuckler). Both are built in memory: nothing is written to disk.
"""
from __future__ import annotations

import re
from typing import Literal, Optional, Union

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import Field, field_validator

from .app import MAX_NOTES, TEMPO_RANGE, Note, Strict

router = APIRouter()
MAX_NOTATION_NOTES = min(MAX_NOTES, 4000)  # sheet music past this is unreadable and slow to engrave
METRE_RE = re.compile(r"^\d{1,2}/\d{1,2}$")
KEY_RE = re.compile(r"^[A-Ga-g][#b]?m?$")
PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


class NotationRequest(Strict):
    notes: list[Note] = Field(max_length=MAX_NOTATION_NOTES)
    tempo: float = Field(120.0, ge=TEMPO_RANGE[0], le=TEMPO_RANGE[1])
    metre: Optional[str] = Field(None, max_length=5, description="time signature, e.g. 3/4 or 6/8")
    pickup: Union[float, Literal["auto"]] = Field(0.0, description="length of an incomplete first bar in beats, "
                                                  "or \"auto\": inferred from the notes (for sampled melodies)")
    key: Optional[str] = Field(None, max_length=3, description="e.g. G, Bb, F#m (m = minor); default: estimated")
    title: Optional[str] = Field(None, max_length=80)

    @field_validator("metre")
    @classmethod
    def _metre(cls, v):
        if v is not None and not METRE_RE.match(v):
            raise ValueError("metre must be N/D, e.g. 3/4 or 6/8")
        return v

    @field_validator("pickup")
    @classmethod
    def _pickup(cls, v):
        if v != "auto" and not 0 <= v <= 32:
            raise ValueError("pickup must be 0..32 beats or \"auto\"")
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v):
        if v is not None and not KEY_RE.match(v):
            raise ValueError("key must be a tonic with an optional # or b and an optional m, e.g. G, Bb, F#m")
        return v


def _score(req: NotationRequest):
    from ..data.notes import Score
    from ..sampling.notation import parse_metre

    n = req.notes
    key = None
    if req.key:
        k = req.key
        minor = k.endswith("m")
        k = k[:-1] if minor else k
        key = ((PC[k[0].upper()] + (1 if k[1:] == "#" else -1 if k[1:] == "b" else 0)) % 12,
               "minor" if minor else "major")
    s = Score(pitch=[x.p for x in n], start=[x.s for x in n], duration=[x.d for x in n],
              velocity=[x.v for x in n], tempo=req.tempo, title=req.title or "tunesmith", key=key,
              time_signature=parse_metre(req.metre) if req.metre else (4, 4),
              pickup=0.0 if req.pickup == "auto" else req.pickup)
    if s.key is None and len(s):
        s.key = s.estimate_key()
    return s


def _attachment(name: str) -> dict:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.post("/api/abc", summary="The given notes as ABC notation (what the page renders; a download)",
             responses={200: {"content": {"text/vnd.abc": {}}}})
def abc(req: NotationRequest):
    from ..sampling.notation import to_abc

    text = to_abc(_score(req), pickup="auto" if req.pickup == "auto" else None)  # bad input: 400 (TunesmithError)
    return Response(text, media_type="text/vnd.abc; charset=utf-8", headers=_attachment("tunesmith.abc"))


@router.post("/api/musicxml", summary="The given notes as MusicXML (a download)",
             responses={200: {"content": {"application/vnd.recordare.musicxml+xml": {}}}})
def musicxml(req: NotationRequest):
    from ..sampling.notation import to_musicxml

    data = to_musicxml(_score(req), pickup="auto" if req.pickup == "auto" else None)
    return Response(data, media_type="application/vnd.recordare.musicxml+xml", headers=_attachment("tunesmith.musicxml"))


def model_options(entry) -> dict:
    """The metre a model's pieces are in, when its config says (a conditioned model's default condition, or
    the codec's own); the page sends it with the notes."""
    from ..sampling.notation import condition_metre

    try:
        metre = condition_metre(dict(entry.cfg.sample).get("condition"))
    except Exception:
        metre = None
    ts = metre or getattr(entry.codec, "time_signature", None)
    return {"metre": f"{ts[0]}/{ts[1]}"} if ts else {}
