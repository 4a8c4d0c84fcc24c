"""Sheet music from our notes: ABC and MusicXML, with key and time signatures, bar lines, ties across bars
and pickup bars (anacrusis).

One layout step (:func:`layout`) cuts a :class:`~tunesmith.data.notes.Score` into voices, bars and notatable
pieces (split at bar lines and into plain or dotted note values, tied); both writers read it:

* ABC is written here (music21 reads ABC but has no ABC writer);
* MusicXML is a music21 stream built bar by bar from the same pieces (we never let music21 re-bar or
  re-tie the notes, and never go through its MIDI writer, which fails on some Essen tunes).

Reading either file back with music21 (:func:`tunesmith.data.corpora.parse_file`) gives the same pitches,
onsets and durations, the metre, the key and the pickup (tested on every Erk song). Notes are spelled in the
key (sharps in sharp keys, flats in flat keys, raised 6th and 7th in minor). A score holds one metre: a song
that changes metre is barred in its first one (its notes stay exact). Drum tracks are left out.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..data.notes import Score
from ..errors import TunesmithError
from ..files import atomic_path

FORMATS = {"mid": ".mid", "abc": ".abc", "musicxml": ".musicxml"}
ALIASES = {"midi": "mid", "xml": "musicxml"}
NAT = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
LETTERS = "CDEFGAB"
# fifths of the key signature for a tonic pitch class: the spelling with fewer accidentals
MAJOR_FIFTHS = {0: 0, 1: -5, 2: 2, 3: -3, 4: 4, 5: -1, 6: 6, 7: 1, 8: -4, 9: 3, 10: -2, 11: 5}
MINOR_FIFTHS = {0: -3, 1: 4, 2: -1, 3: -6, 4: 1, 5: -4, 6: 3, 7: -2, 8: 5, 9: 0, 10: -5, 11: 2}
MAJOR_TONICS = ["Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#"]
MINOR_TONICS = ["Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#"]
# plain and dotted note values, in quarter notes (dotted whole .. 32nd)
NOTE_VALUES = [Fraction(x) for x in ("6", "4", "3", "2", "3/2", "1", "3/4", "1/2", "3/8", "1/4", "3/16", "1/8",
                                     "3/32", "1/16", "1/32")]
ABC_UNIT = Fraction(1, 2)  # L:1/8 (in quarter notes)


def parse_formats(spec: str | list | tuple | None) -> tuple[str, ...]:
    """``"mid,abc"`` -> ``("mid", "abc")``; unknown names raise a one-line TunesmithError."""
    if spec is None or spec == "":
        return ("mid",)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for raw in items:
        f = ALIASES.get(str(raw).strip().lower(), str(raw).strip().lower())
        if f not in FORMATS:
            raise TunesmithError(f"unknown output format {str(raw).strip()!r}: use mid, abc or musicxml "
                                 "(a comma list, e.g. --format mid,abc)")
        if f not in out:
            out.append(f)
    if not out:
        raise TunesmithError("--format is empty: use mid, abc or musicxml (a comma list, e.g. mid,abc)")
    return tuple(out)


def parse_metre(text) -> tuple[int, int]:
    """``"3/4"`` or ``(3, 4)`` -> ``(3, 4)``; a bad metre raises TunesmithError."""
    try:
        num, den = (text.split("/") if isinstance(text, str) else text)
        num, den = int(num), int(den)
    except (ValueError, TypeError):
        raise TunesmithError(f"metre {text!r} is not N/D, e.g. 3/4 or 6/8") from None
    if not 1 <= num <= 32 or den not in (1, 2, 4, 8, 16, 32):
        raise TunesmithError(f"metre {num}/{den}: the numerator must be 1..32 and the denominator 1, 2, 4, 8, 16 or 32")
    return num, den


def frac(x) -> Fraction:
    return Fraction(float(x)).limit_denominator(960)


# ------------------------------------------------------------------------------------------ spelling
@dataclass(frozen=True)
class KeySig:
    tonic: int        # pitch class
    mode: str         # "major" | "minor"
    fifths: int       # sharps (> 0) or flats (< 0)

    @classmethod
    def of(cls, key: tuple[int, str] | None) -> "KeySig":
        tonic, mode = key if key is not None else (0, "major")
        mode = mode if mode in ("major", "minor") else "major"
        tonic = int(tonic) % 12
        return cls(tonic, mode, (MAJOR_FIFTHS if mode == "major" else MINOR_FIFTHS)[tonic])

    @property
    def tonic_name(self) -> str:
        return (MAJOR_TONICS if self.mode == "major" else MINOR_TONICS)[self.fifths + 7]

    def alter(self, letter: str) -> int:
        """The key signature's alteration of a letter."""
        if self.fifths > 0:
            return 1 if letter in "FCGDAEB"[:self.fifths] else 0
        return -1 if letter in "BEADGCF"[:-self.fifths] else 0

    def spell(self, pitch: int) -> tuple[str, int, int]:
        """MIDI pitch -> (letter, alteration in semitones, octave), in this key."""
        pc = pitch % 12
        sig = {L: (NAT[L] + self.alter(L)) % 12 for L in LETTERS}
        hit = [L for L in LETTERS if sig[L] == pc]
        if hit:
            letter, alt = hit[0], self.alter(hit[0])
        else:  # a chromatic note: both neighbours are in the scale; the fewest accidentals, then by key
            up = next(L for L in LETTERS if sig[L] == (pc - 1) % 12)     # raise the note below
            down = next(L for L in LETTERS if sig[L] == (pc + 1) % 12)   # or lower the note above
            raised = (up, self.alter(up) + 1)
            lowered = (down, self.alter(down) - 1)
            if self.mode == "minor" and pc in ((self.tonic + 9) % 12, (self.tonic + 11) % 12):
                prefer_raise = True
            elif self.fifths == 0:
                prefer_raise = pc not in (3, 10)  # C major / A minor: F# C# G#, but Bb and Eb
            else:
                prefer_raise = self.fifths > 0
            first, second = (raised, lowered) if prefer_raise else (lowered, raised)
            letter, alt = min((first, second), key=lambda c: abs(c[1]))  # a natural sign beats a sharp/flat
        octave = (int(pitch) - alt - NAT[letter]) // 12 - 1
        return letter, alt, octave


# ------------------------------------------------------------------------------------------ layout
@dataclass
class Piece:
    """One notated item inside a bar: a note, a chord or a rest (``pitches == ()``)."""
    start: Fraction
    dur: Fraction
    pitches: tuple[int, ...]
    tie: bool = False  # tied to the next piece of the same voice


@dataclass
class Voice:
    track: int
    bars: list[list[Piece]] = field(default_factory=list)

    @property
    def clef(self) -> str:
        ps = [p for bar in self.bars for pc in bar for p in pc.pitches]
        return "bass" if ps and sum(ps) / len(ps) < 55 else "treble"


@dataclass
class Layout:
    metre: tuple[int, int]
    pickup: Fraction
    key: KeySig
    bars: list[tuple[Fraction, Fraction]]
    voices: list[Voice]
    tempo: float
    title: str


def _split(dur: Fraction) -> list[Fraction]:
    """A length inside one bar as plain or dotted note values, longest first (exact for any multiple of a
    32nd; a tuplet length that no value fits is kept whole)."""
    out, left = [], dur
    while left > 0:
        v = next((v for v in NOTE_VALUES if v <= left), None)
        if v is None or (left.denominator & (left.denominator - 1)):  # below a 32nd, or not dyadic
            out.append(left)
            break
        out.append(v)
        left -= v
    return out


def beat_of(metre: tuple[int, int]) -> Fraction:
    """The beat in quarter notes: a dotted quarter in 6/8, 9/8, 12/8; else the denominator's value."""
    num, den = metre
    return Fraction(3, 2) if den == 8 and num % 3 == 0 and num > 3 else Fraction(4, den)


def _split_rest(offset: Fraction, dur: Fraction, beat: Fraction) -> list[Fraction]:
    """A rest that starts off the beat first fills up to the next beat, then goes on in long values."""
    to_beat = (-offset) % beat
    if 0 < to_beat < dur:
        return _split(to_beat) + _split(dur - to_beat)
    return _split(dur)


def infer_pickup(score: Score, metre=None, step: float = 0.25) -> float:
    """The most likely anacrusis of a melody that carries no bar lines (a sampled one): of the bar-line
    placements ``step`` apart, the one that puts the most (and the longest) notes on downbeats (weight 2) and
    beats (weight 1), each note counting the square root of its length. Given the true metre it finds the
    notated pickup of 83 % of the Erk songs (measured on all 1,781; tests/test_notation.py)."""
    import numpy as np

    num, den = parse_metre(metre if metre is not None else score.time_signature)
    bar, beat = num * 4.0 / den, float(beat_of((num, den)))
    s = score.pitched()
    if len(s) == 0:
        return 0.0
    best, best_score = 0.0, -np.inf
    for p in np.arange(0.0, bar - 1e-9, step):
        pos = np.mod(s.start - p, bar)
        down = np.isclose(pos, 0) | np.isclose(pos, bar)
        in_beat = np.mod(pos, beat)
        on_beat = np.isclose(in_beat, 0) | np.isclose(in_beat, beat)
        value = float(np.sum((2.0 * down + 1.0 * on_beat) * np.sqrt(s.duration)))
        if value > best_score + 1e-9:
            best, best_score = float(p), value
    return best


def layout(score: Score, metre=None, pickup: float | str | None = None) -> Layout:
    """Cut a score into voices (one per track; a track whose notes overlap with different lengths gets more),
    bars (the first one ``pickup`` beats long when there is an anacrusis: ``None`` takes the score's own,
    ``"auto"`` infers it with :func:`infer_pickup`) and notatable pieces."""
    num, den = parse_metre(metre if metre is not None else score.time_signature)
    bar = Fraction(num * 4, den)
    if pickup == "auto":
        pickup = infer_pickup(score, (num, den))
    pick = frac(score.pickup if pickup is None else pickup)
    beat = beat_of((num, den))
    if not 0 <= pick < bar:
        raise TunesmithError(f"pickup {float(pick):g} beats must be >= 0 and shorter than a {num}/{den} bar "
                             f"({float(bar):g} beats)")
    s = score.pitched().sorted()
    starts = [frac(x) for x in s.start]
    durs = [frac(x) for x in s.duration]
    if any(d <= 0 for d in durs) or any(a < 0 for a in starts):
        raise TunesmithError("notes must have onsets >= 0 and durations > 0 to be notated")
    end = max([a + d for a, d in zip(starts, durs)] + [frac(score.end or 0)])
    if end <= 0:
        end = bar
    edges = [Fraction(0)] + ([pick] if 0 < pick < end else [])
    while edges[-1] + bar < end:
        edges.append(edges[-1] + bar)
    bars = [(a, b) for a, b in zip(edges, edges[1:] + [end])]
    bar_starts = [a for a, _ in bars]

    voices: list[Voice] = []
    for track in sorted(set(s.track.tolist())) or [0]:
        chords: dict[tuple[Fraction, Fraction], list[int]] = {}
        for p, a, d, t in zip(s.pitch.tolist(), starts, durs, s.track.tolist()):
            if t == track:
                chords.setdefault((a, d), []).append(int(p))
        lanes: list[list[tuple[Fraction, Fraction, tuple[int, ...]]]] = []
        for (a, d), ps in sorted(chords.items(), key=lambda kv: (kv[0][0], -max(kv[1]))):
            lane = next((ln for ln in lanes if ln[-1][0] + ln[-1][1] <= a), None)
            if lane is None:
                lanes.append(lane := [])
            lane.append((a, d, tuple(sorted(set(ps)))))
        for lane in lanes or [[]]:
            v = Voice(int(track), [[] for _ in bars])
            t = Fraction(0)
            events = []
            for a, d, ps in lane:
                if a > t:
                    events.append((t, a - t, ()))
                events.append((a, d, ps))
                t = a + d
            if t < end:
                events.append((t, end - t, ()))
            for a, d, ps in events:  # cut at bar lines, then into note values
                e = a + d
                i = bisect.bisect_right(bar_starts, a) - 1  # the bar the event starts in
                pos = a
                while pos < e:
                    b1 = bars[i][1]
                    seg_end = min(e, b1)
                    for val in (_split(seg_end - pos) if ps else
                                _split_rest(pos - bars[i][0], seg_end - pos, beat)):
                        v.bars[i].append(Piece(pos, val, ps, tie=bool(ps) and pos + val < e))
                        pos += val
                    i += 1
            voices.append(v)
    key = score.key if score.key is not None or not len(s) else s.estimate_key()  # unknown: estimated
    return Layout((num, den), pick, KeySig.of(key), bars, voices, float(score.tempo or 120.0),
                  score.title or "")


# ------------------------------------------------------------------------------------------ ABC
def _abc_len(d: Fraction) -> str:
    n = d / ABC_UNIT
    if n == 1:
        return ""
    if n.denominator == 1:
        return str(n.numerator)
    return (str(n.numerator) if n.numerator != 1 else "") + f"/{n.denominator}"


def _abc_pitch(letter: str, alt: int, octave: int, show: bool) -> str:
    acc = {-2: "__", -1: "_", 0: "=", 1: "^", 2: "^^"}[alt] if show else ""
    if octave >= 5:
        return acc + letter.lower() + "'" * (octave - 5)
    return acc + letter + "," * (4 - octave)


def _abc_text(text: str) -> str:
    return " ".join(str(text).split())[:200]


def to_abc(score: Score, metre=None, pickup: float | str | None = None, number: int = 1,
           bars_per_line: int = 4) -> str:
    """The score as one ABC tune (``X:`` ``number``), L:1/8. A sign is written on every note off the key
    signature and on a note that an earlier sign in the bar would alter: readers that carry accidentals
    through the bar (abcjs, the ABC standard) and those that do not (music21) read the same pitches."""
    lay = layout(score, metre, pickup)
    k = lay.key
    head = [f"X:{int(number)}", f"T:{_abc_text(lay.title) or 'tunesmith'}", f"M:{lay.metre[0]}/{lay.metre[1]}",
            "L:1/8", f"Q:1/4={int(round(lay.tempo))}"]
    many = len(lay.voices) > 1
    key = k.tonic_name + ("m" if k.mode == "minor" else "")
    head.append(f"K:{key}")  # (a clef in the K: field hides the key from music21: clefs go on V: lines)
    beat = beat_of(lay.metre)

    def bar_text(v: Voice, i: int) -> str:
        state: dict[tuple[str, int], int] = {}
        out, b0 = [], lay.bars[i][0]
        for j, pc in enumerate(v.bars[i]):
            sep = j > 0 and ((pc.start - b0) % beat == 0 or pc.dur >= beat or not pc.pitches
                             or not v.bars[i][j - 1].pitches or v.bars[i][j - 1].dur >= beat)
            if not pc.pitches:
                tok = "z" + _abc_len(pc.dur)
            else:
                names = []
                for p in pc.pitches:
                    letter, alt, octv = k.spell(p)
                    cur = state.get((letter, octv), k.alter(letter))
                    show = alt != k.alter(letter) or alt != cur
                    state[(letter, octv)] = alt
                    names.append(_abc_pitch(letter, alt, octv, show))
                body = names[0] if len(names) == 1 else "[" + "".join(names) + "]"
                tok = body + _abc_len(pc.dur) + ("-" if pc.tie else "")
            out.append((" " if sep else "") + tok)
        return "".join(out)

    lines = []
    nb = len(lay.bars)
    first = 1 + (1 if lay.pickup > 0 else 0)  # the pickup shares the first line
    groups = [(0, min(nb, bars_per_line + first - 1))]
    while groups[-1][1] < nb:
        groups.append((groups[-1][1], min(nb, groups[-1][1] + bars_per_line)))
    for vi, v in enumerate(lay.voices, 1):  # voices one after another (music21 cannot read interleaved ones)
        if many or v.clef != "treble":
            lines.append(f"V:{vi} clef={v.clef}")
        for g0, g1 in groups:
            lines.append(" | ".join(bar_text(v, i) for i in range(g0, g1)) + (" |]" if g1 == nb else " |"))
    return "\n".join(head + lines) + "\n"


# ------------------------------------------------------------------------------------------ MusicXML
def to_music21(score: Score, metre=None, pickup: float | str | None = None):
    """A music21 Score built bar by bar from the layout: one part per track, voices inside the measures
    when a track has overlapping notes of different lengths, measure 0 for a pickup."""
    import music21 as m21

    lay = layout(score, metre, pickup)
    k = lay.key
    out = m21.stream.Score()
    out.metadata = m21.metadata.Metadata()
    out.metadata.title = lay.title or "tunesmith"
    bar_len = Fraction(lay.metre[0] * 4, lay.metre[1])
    by_track: dict[int, list[Voice]] = {}
    for v in lay.voices:
        by_track.setdefault(v.track, []).append(v)

    def element(pc: Piece, prev_tie: bool):
        if not pc.pitches:
            el = m21.note.Rest()
        else:
            ps = []
            for p in pc.pitches:
                letter, alt, octv = k.spell(p)
                pitch = m21.pitch.Pitch(step=letter, octave=octv)
                # an explicit alteration on every pitch, naturals included: music21 then writes <alter> on
                # every note, and reads the notes of a tie chain as equal pitches (it does not merge a tied
                # B-natural shown with a sign into its continuation without one)
                pitch.accidental = m21.pitch.Accidental(alt)
                ps.append(pitch)
            el = m21.note.Note(ps[0]) if len(ps) == 1 else m21.chord.Chord(ps)
            if pc.tie or prev_tie:
                el.tie = m21.tie.Tie("continue" if pc.tie and prev_tie else "start" if pc.tie else "stop")
        el.duration = m21.duration.Duration(quarterLength=pc.dur)
        return el

    for ti, (track, voices) in enumerate(sorted(by_track.items())):
        part = m21.stream.Part()
        part.id = f"P{ti + 1}"
        ties = [False] * len(voices)
        for i, (b0, b1) in enumerate(lay.bars):
            m = m21.stream.Measure(number=i + (0 if lay.pickup > 0 else 1))
            if i == 0:
                m.insert(0, m21.clef.BassClef() if voices[0].clef == "bass" else m21.clef.TrebleClef())
                m.insert(0, m21.key.Key(k.tonic_name, k.mode))
                m.insert(0, m21.meter.TimeSignature(f"{lay.metre[0]}/{lay.metre[1]}"))
                if ti == 0:
                    m.insert(0, m21.tempo.MetronomeMark(number=round(lay.tempo, 2), referent=1.0))
                if lay.pickup > 0:
                    m.paddingLeft = float(bar_len - lay.pickup)
            for vi, v in enumerate(voices):
                box = m if len(voices) == 1 else m21.stream.Voice(id=str(vi + 1))
                for pc in v.bars[i]:
                    box.insert(m21.common.opFrac(pc.start - b0), element(pc, ties[vi]))
                    ties[vi] = pc.tie
                if box is not m:
                    m.insert(0, box)
            if i == len(lay.bars) - 1:
                m.rightBarline = m21.bar.Barline("final")
            part.append(m)
        out.insert(0, part)
    return out


def to_musicxml(score: Score, metre=None, pickup: float | str | None = None) -> bytes:
    """The score as MusicXML (partwise, uncompressed)."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    return GeneralObjectExporter(to_music21(score, metre, pickup)).parse()


# ------------------------------------------------------------------------------------------ files
def write_notation(score: Score, path: str | os.PathLike, fmt: str | None = None, metre=None,
                   pickup: float | str | None = None) -> Path:
    """Write ``score`` as ABC or MusicXML (by ``fmt`` or the path's suffix), atomically."""
    path = Path(path)
    fmt = fmt or {".abc": "abc", ".musicxml": "musicxml", ".xml": "musicxml"}.get(path.suffix.lower())
    if fmt == "abc":
        data = to_abc(score, metre, pickup).encode("utf-8")
    elif fmt == "musicxml":
        data = to_musicxml(score, metre, pickup)
    else:
        raise TunesmithError(f"{path}: write sheet music as .abc or .musicxml")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def condition_metre(condition) -> tuple[int, int] | None:
    """The metre a condition asks for: ``"metre=3/4,mode=minor"`` (or ``meter=``, or a dict) -> ``(3, 4)``."""
    if not condition:
        return None
    if isinstance(condition, dict):
        items = condition.items()
    else:
        items = [part.split("=", 1) for part in str(condition).split(",") if "=" in part]
    for k, v in items:
        if str(k).strip().lower() in ("metre", "meter", "time_signature"):
            return parse_metre(str(v).strip())
    return None
