"""Seed 000's time-step melody encoding.

One symbol per 16th note (``step`` beats): a MIDI pitch number where a note starts, ``r`` where a rest
starts, ``_`` while the previous note or rest is held. Songs are joined with ``/`` repeated
``delimiter_length`` times (the seed repeats it sequence-length times). Songs are transposed to C major /
A minor and kept only if every note duration is in the seed's set of acceptable durations: that
preparation, shared with the other melody encodings, is ``data/essen.py``.
"""
from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .base import Codec, DataBundle, WindowedStream, register_encoding
from .corpora import load_corpus, split_by_piece
from .essen import SEED_DURATIONS, check_durations, prepare_melodies, prepared_songs  # noqa: F401 (re-exported)
from .notes import Score

HOLD, REST, DELIM = "_", "r", "/"
#: what ``data.condition`` may name: label tokens (``<metre=3/4>``, ``<mode=minor>``) are put before every song
CONDITIONS = ("metre", "mode")
_KIND_ALIASES = {"metre": "metre", "meter": "metre", "time_signature": "metre", "mode": "mode"}


def is_label(symbol) -> bool:
    """A condition label token such as ``<metre=3/4>`` (not a note, rest or hold)."""
    return str(symbol).startswith("<") and str(symbol).endswith(">")


def label_kind(symbol) -> str:
    """``"<metre=3/4>"`` -> ``"metre"``."""
    return str(symbol)[1:].split("=", 1)[0]


def check_condition(condition) -> list[str]:
    """``data.condition`` (a list or a comma string) -> the canonical kinds; unknown kinds raise one line."""
    if not condition:
        return []
    items = [condition] if isinstance(condition, str) else list(condition)
    kinds = [k.strip().lower() for item in items for k in str(item).split(",") if k.strip()]
    bad = [k for k in kinds if k not in _KIND_ALIASES]
    if bad:
        raise TunesmithError(f"data.condition {bad[0]!r} is not supported: use any of {list(CONDITIONS)}")
    return list(dict.fromkeys(_KIND_ALIASES[k] for k in kinds))


def song_mode(score: Score) -> str:
    """``"major"`` or ``"minor"``: the corpus's own annotation when it says minor, else the Krumhansl-Schmuckler
    estimate on the duration-weighted pitch-class histogram (music21 reads a bare key signature as a major key --
    every Erk song is annotated "major" -- so a "major" annotation is not trusted)."""
    from .notes import estimate_key

    if score.key is not None and score.key[1] == "minor":
        return "minor"
    return estimate_key(score.pitch_class_histogram())[1]


def song_labels(score: Score, condition) -> list[str]:
    """The label tokens of one song for ``data.condition``, in the order of the kinds, e.g.
    ``["<metre=3/4>", "<mode=minor>"]`` (its first time signature; its mode, :func:`song_mode`)."""
    out = []
    for kind in check_condition(condition):
        if kind == "metre":
            num, den = score.time_signature
            out.append(f"<metre={int(num)}/{int(den)}>")
        elif kind == "mode":
            out.append(f"<mode={song_mode(score)}>")
    return out


def encode_score(score: Score, step: float = 0.25) -> list[str]:
    """Melody -> symbols. Polyphony is reduced to the top voice; gaps become rests."""
    mel = score.monophonic()
    out: list[str] = []
    t = 0  # current time in steps
    for p, s, d in zip(mel.pitch, mel.start, mel.duration):
        a = int(round(s / step))
        n = max(1, int(round(d / step)))
        if a > t:  # a rest fills the gap
            out += [REST] + [HOLD] * (a - t - 1)
        elif a < t:  # overlaps the previous (quantisation); cut the previous note
            del out[a - t:]
        out += [str(int(p))] + [HOLD] * (n - 1)
        t = a + n
    return out


def decode_tokens(tokens, step: float = 0.25, tempo: float = 120.0) -> Score:
    """Symbols -> Score. Stops at the first delimiter; a leading hold is read as a rest."""
    pitch, start, dur = [], [], []
    cur = None  # index into the note lists of the note being held, or None during a rest
    t = 0
    metre = None
    for tok in tokens:
        tok = str(tok)
        if tok == DELIM:
            break
        if is_label(tok):  # a condition label takes no time; a metre label is the melody's time signature
            if tok.startswith("<metre=") and metre is None:
                metre = tuple(int(x) for x in tok[len("<metre="):-1].split("/"))
            continue
        if tok == HOLD:
            if cur is not None:
                dur[cur] += step
        elif tok == REST:
            cur = None
        else:
            pitch.append(int(tok)); start.append(t * step); dur.append(step)
            cur = len(pitch) - 1
        t += 1
    kw = {"time_signature": metre} if metre else {}
    return Score.from_notes(zip(pitch, start, dur), tempo=tempo, end=t * step, **kw)


class TimeStepCodec(Codec):
    name = "timestep"

    def __init__(self, vocab: list[str], step: float = 0.25, seq_len: int = 64, target: str = "all"):
        self.target = target
        self.vocab = list(vocab)
        self.index = {s: i for i, s in enumerate(self.vocab)}
        self.step, self.seq_len = float(step), int(seq_len)

    @classmethod
    def from_corpus(cls, songs: list[list[str]], step: float, seq_len: int, target: str = "all") -> "TimeStepCodec":
        symbols = set(s for song in songs for s in song) | {DELIM, HOLD, REST}
        pitches = sorted((s for s in symbols if s.isdigit()), key=int)
        labels = sorted(s for s in symbols if is_label(s))  # only when the data is conditioned
        return cls([DELIM, HOLD, REST] + pitches + labels, step, seq_len, target)

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "vocab": self.vocab, "step": self.step, "seq_len": self.seq_len,
                "target": self.target}

    @classmethod
    def from_state(cls, state):
        return cls(state["vocab"], state["step"], state["seq_len"], state.get("target", "all"))

    def model_info(self) -> dict[str, Any]:
        info = {"vocab_size": len(self.vocab), "delimiter_id": self.index[DELIM], "target": self.target}
        if self.labels:
            info["label_groups"] = self.label_groups
            info["bar_steps"] = self.bar_steps
        return info

    @property
    def bar_steps(self) -> dict[int, int]:
        """``{metre label id: steps in one bar}`` (``<metre=3/4>`` -> 12 at a 16th-note step)."""
        out = {}
        for s in self.labels:
            if label_kind(s) == "metre":
                num, den = (int(x) for x in s[len("<metre="):-1].split("/"))
                steps = num * 4 / den / self.step
                if abs(steps - round(steps)) < 1e-9:
                    out[self.index[s]] = int(round(steps))
        return out

    @property
    def labels(self) -> list[str]:
        """The condition label tokens of the vocabulary (empty for an unconditioned model)."""
        return [s for s in self.vocab if is_label(s)]

    @property
    def label_groups(self) -> dict[str, list[int]]:
        """``{kind: [ids of its label tokens]}`` in the order the kinds precede a song (metre, then mode)."""
        groups: dict[str, list[int]] = {}
        for kind in CONDITIONS:
            ids = [self.index[s] for s in self.labels if label_kind(s) == kind]
            if ids:
                groups[kind] = ids
        return groups

    def condition_symbols(self, condition) -> list[str]:
        """``"metre=3/4"`` (a comma list, or a dict) -> the label tokens to put before a primer. A kind or
        value the model was not trained with raises one line listing the valid ones."""
        if not condition:
            return []
        items = (list(condition.items()) if isinstance(condition, dict) else
                 [part.split("=", 1) if "=" in part else (part, "") for part in str(condition).split(",")
                  if part.strip()])
        labels = self.labels
        valid = ", ".join(s[1:-1] for s in labels)
        if not labels:
            raise TunesmithError("this model does not take --condition: it was trained without condition labels "
                                 "(train with data.condition = [\"metre\", \"mode\"], e.g. configs/essen_lstm_cond.toml)")
        out = []
        for k, v in items:
            kind = _KIND_ALIASES.get(str(k).strip().lower(), str(k).strip().lower())
            tok = f"<{kind}={str(v).strip().replace(' ', '')}>"
            if tok not in self.index:
                raise TunesmithError(f"condition {str(k).strip()}={str(v).strip()} is not one this model knows; "
                                     f"valid: {valid}")
            out.append(tok)
        kinds = [label_kind(t) for t in out]
        if len(set(kinds)) < len(kinds):
            raise TunesmithError(f"condition {condition!r} names {kinds[0]} twice; give each kind once, e.g. "
                                 "metre=3/4,mode=minor")
        order = list(CONDITIONS)
        return sorted(out, key=lambda t: order.index(label_kind(t)))  # the order the labels precede a song

    def encode(self, symbols) -> list[int]:
        unknown = [s for s in symbols if s not in self.index]
        if unknown:
            pitches = [s for s in self.vocab if s.isdigit()]
            raise TunesmithError(f"symbol {unknown[0]!r} is not in the vocabulary (pitches {pitches[0]}..{pitches[-1]}, "
                                 f"'_' hold, 'r' rest, '/' end)")
        return [self.index[s] for s in symbols]

    def parse_primer(self, text: str) -> list[int]:
        """A primer melody in the encoding's own text, e.g. ``"67 _ 67 _ 69 _ 67 _"``."""
        return self.encode(str(text).split())

    def decode(self, ids, tempo: float = 120.0) -> Score:
        return decode_tokens([self.vocab[int(i)] for i in ids], self.step, tempo)


def encode_corpus(scores: list[Score], step: float, durations, transpose: bool, verbose: bool = True):
    """Filter and transpose (:func:`essen.prepare_melodies`), then encode: [(score, symbols)], reasons."""
    kept, reasons = prepare_melodies(scores, step, durations, transpose, verbose)
    return [(sc, encode_score(sc, step)) for sc in kept], reasons


class LabelledWindows(WindowedStream):
    """Windows that carry, for every position, the label of each condition kind of the song it lies in
    (``batch()["labels"]``: (B, length, kinds) label-token ids, -1 between songs): a window that starts inside a
    song is conditioned although the song's label tokens lie before it. The models add the labels' embeddings
    at every step (docs/conditioning.md)."""

    def __init__(self, stream: torch.Tensor, length: int, stride: int, groups: list[list[int]], delimiter: int):
        super().__init__(stream, length, stride)
        kind = {t: k for k, ids in enumerate(groups) for t in ids}
        cur, rows, since, n = [-1] * len(groups), [], [], -1
        for t in stream.tolist():
            if t == delimiter:
                cur, n = [-1] * len(groups), -1
            elif t in kind:
                cur[kind[t]], n = t, -1
            else:
                n += 1
            rows.append(list(cur))
            since.append(n)
        self.current = torch.tensor(rows, dtype=torch.long).reshape(len(rows), len(groups))
        self.since = torch.tensor(since, dtype=torch.long)   # steps since the song's first symbol, -1 outside

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        b = super().batch(idx)
        at = self.starts[idx][:, None] + self.offsets
        b["labels"], b["since"] = self.current[at], self.since[at]
        return b


def _stream(songs: list[list[str]], codec: TimeStepCodec, delim_len: int) -> torch.Tensor:
    ids: list[int] = []
    d = codec.index[DELIM]
    for s in songs:
        ids += [d] * delim_len + codec.encode(s)
    ids += [d] * delim_len
    return torch.tensor(ids, dtype=torch.long)


@register_encoding("timestep")
def build_timestep(dataset: str = "essen-erk", seq_len: int = 64, step: float = 0.25,
                   durations: list[float] = SEED_DURATIONS, transpose: bool = True, val_fraction: float = 0.1,
                   split_seed: int = 0, target: str = "all", delimiter_length: int | None = None,
                   max_pieces: int | None = None, source: str | None = None, condition=None) -> DataBundle:
    """Seed 000's data (``source``, a folder of the user's own files, replaces ``dataset`` when given). ``target="all"`` trains every position of non-overlapping windows (teacher forcing);
    ``target="last"`` is the seed's way: a window at every position, only its last token predicted.
    ``condition = ["metre"]`` puts each song's label token (``<metre=3/4>``) after the delimiters before it, and
    each training window that starts inside a song starts with that label (:class:`LabelledWindows`;
    docs/conditioning.md); without it the data is exactly the unconditioned encoding."""
    if target not in ("all", "last"):
        raise TunesmithError(f"data.target must be 'all' or 'last', not {target!r}")
    condition = check_condition(condition)
    dataset = source or dataset
    scores = load_corpus(dataset)
    if max_pieces:
        scores = scores[:max_pieces]
    kept, reasons = encode_corpus(scores, step, durations, transpose)
    if condition:  # a kind every song shares (e.g. MIDI files without time signatures read as 4/4) is dropped
        values = {k: Counter(lab for sc, _ in kept for lab in song_labels(sc, [k])) for k in condition}
        for k, v in values.items():
            if len(v) < 2:
                print(f"data.condition: every song has {next(iter(v), 'no ' + k)}: not conditioned on {k}",
                      file=sys.stderr, flush=True)
        condition = [k for k in condition if len(values[k]) >= 2]
    if condition:
        kept = [(sc, song_labels(sc, condition) + syms) for sc, syms in kept]
    train, val = split_by_piece(kept, val_fraction, split_seed)
    codec = TimeStepCodec.from_corpus([s for _, s in kept], step, seq_len, target)
    delim = seq_len if delimiter_length is None else int(delimiter_length)
    train_stream = _stream([s for _, s in train], codec, delim)
    stride = seq_len if target == "all" else 1
    def windows(stream, length, stride):
        if not condition:
            return WindowedStream(stream, length, stride)
        return LabelledWindows(stream, length, stride, list(codec.label_groups.values()), codec.index[DELIM])
    train_ds = windows(train_stream, seq_len + 1, stride)
    val_ds = None
    if val:
        val_stream = _stream([s for _, s in val], codec, delim)
        val_ds = windows(val_stream, min(seq_len + 1, len(val_stream)), seq_len if target == "all" else 1)
    stats = {"songs": len(scores), "kept": len(kept), "dropped": dict(reasons), "train_songs": len(train),
             "val_songs": len(val), "train_tokens": len(train_stream), "vocab_size": len(codec.vocab),
             "target": target}
    if condition:
        stats["labels"] = dict(Counter(x for _, syms in kept for x in syms[:len(condition)]))
    bundle = DataBundle(train_ds, val_ds, codec, stats, reference=[sc for sc, _ in val])
    bundle.baseline = lambda: ngram_baseline(bundle)
    return bundle


def ngram_baseline(bundle: DataBundle, order: int = 5) -> dict[str, float]:
    """Witten-Bell interpolated n-gram on the training stream, scored on the validation windows' targets
    with the same masking as the LSTM (runs of delimiters ignored). Returns nats/step and accuracy."""
    from collections import defaultdict

    codec = bundle.codec
    d = codec.index[DELIM]
    train = bundle.train.stream.tolist()
    V = len(codec.vocab)
    counts = [defaultdict(Counter) for _ in range(order)]  # counts[k][context of length k][next]
    for i in range(len(train)):
        for k in range(order):
            if i - k < 0:
                break
            counts[k][tuple(train[i - k:i])][train[i]] += 1

    cache: dict = {}

    def dist(ctx: tuple) -> np.ndarray:
        if ctx in cache:
            return cache[ctx]
        p = np.full(V, 1.0 / V)
        for k in range(0, len(ctx) + 1):
            c = counts[k].get(ctx[len(ctx) - k:] if k else ())
            if not c:
                break
            total, types = sum(c.values()), len(c)
            ml = np.zeros(V)
            for w, n in c.items():
                ml[w] = n
            lam = total / (total + types)
            p = lam * ml / total + (1 - lam) * p
        cache[ctx] = p
        return p

    if bundle.val is None:
        return {}
    nll, correct, n = 0.0, 0, 0
    for w in bundle.val.batch(torch.arange(len(bundle.val)))["tokens"].tolist():
        for t in range(1, len(w)):
            if w[t] == d and w[t - 1] == d:
                continue
            ctx = tuple(w[max(0, t - order + 1):t])
            p = dist(ctx)
            nll -= float(np.log(p[w[t]]))
            correct += int(np.argmax(p) == w[t])
            n += 1
    return {"val_loss": nll / max(n, 1), "val_acc": correct / max(n, 1), "order": order}
