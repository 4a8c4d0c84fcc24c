"""``tunesmith score RUN DATA``: how likely a melody model finds held-out music.

Every piece is scored on its own: the model sees the run's own number of song delimiters (``/``), then
predicts every time step of the song and the ``/`` that ends it. Reported per piece and over all pieces:

* **nats/step** -- mean negative log-likelihood per predicted symbol (the trainer's validation loss unit);
* **bits/note** -- the piece's total negative log-likelihood in bits divided by its number of notes;
* **accuracy** -- how often the most likely symbol is the true one.

The means are over all predicted steps (and all notes), not over pieces. At the first step of a song the
delimiter is excluded and the rest renormalised: *where* a song starts is a matter of how the training stream
was laid out (runs of 64 delimiters for the LSTM, 16 for the Transformer), not of the music, so every model
is scored on ``P(song | a song starts here)``.

A model trained with ``data.condition`` (label tokens such as ``<metre=3/4>`` before every song) is given each
song's true label after the delimiters; the label itself is not scored, so it is scored on
``P(song | a song with this label starts here)`` (the report says so under ``given``).

Models: a run directory or ``zoo:NAME`` of a time-step likelihood model (``melody_lstm``,
``melody_transformer``), or ``ngram:N`` -- the Witten-Bell n-gram baseline of the time-step encoding, fitted
on the training songs of the same split (``ngram:N:DATASET`` picks the corpus it is fitted on; default the
dataset being scored, or essen-erk for a folder).
Data: ``DATASET:val`` / ``DATASET:train`` (the split the timestep encoding makes), ``DATASET`` (all songs),
or a folder of MIDI/kern/ABC/MusicXML files.
"""
from __future__ import annotations

import json
import math
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import TunesmithError

LN2 = math.log(2.0)
SPLITS = ("train", "val")
#: steps of a song, for the mean loss by position (does a model use what came earlier in the song?)
POSITION_BUCKETS = ((0, 32), (32, 64), (64, 128), (128, 256), (256, None))


# ------------------------------------------------------------------------------------------------ n-gram
class NGram:
    """Interpolated Witten-Bell n-gram over symbol ids (the baseline of the timestep encoding):
    ``p_k(w | h) = lam * c(h, w) / c(h) + (1 - lam) * p_(k-1)(w | h')`` with ``lam = c(h) / (c(h) + types(h))``,
    from the uniform distribution up to the longest context seen in training."""

    def __init__(self, stream: list[int], vocab_size: int, order: int = 5):
        if order < 1:
            raise TunesmithError(f"n-gram order must be >= 1, got {order}")
        self.order, self.V = order, vocab_size
        self.counts = [defaultdict(Counter) for _ in range(order)]  # counts[k][context of length k][next]
        for i in range(len(stream)):
            for k in range(order):
                if i - k < 0:
                    break
                self.counts[k][tuple(stream[i - k:i])][stream[i]] += 1
        self._cache: dict = {}

    def dist(self, ctx) -> np.ndarray:
        ctx = tuple(ctx)[max(0, len(ctx) - self.order + 1):] if self.order > 1 else ()
        if ctx in self._cache:
            return self._cache[ctx]
        p = np.full(self.V, 1.0 / self.V)
        for k in range(0, len(ctx) + 1):
            c = self.counts[k].get(ctx[len(ctx) - k:] if k else ())
            if not c:
                break
            total, types = sum(c.values()), len(c)
            ml = np.zeros(self.V)
            for w, n in c.items():
                ml[w] = n
            lam = total / (total + types)
            p = lam * ml / total + (1 - lam) * p
        self._cache[ctx] = p
        return p

    def log_probs(self, ids: torch.Tensor) -> torch.Tensor:
        seq = ids.tolist()
        return torch.from_numpy(np.log(np.stack([self.dist(seq[:t + 1]) for t in range(len(seq))]))).float()


# ------------------------------------------------------------------------------------------------ models
@dataclass
class Scorer:
    """What scoring needs from a model: its codec, the data settings of its run (for the split and the
    filters), how many delimiters precede a song, and log-probabilities for one sequence."""
    name: str
    codec: object
    data_cfg: dict
    prefix: int
    log_probs: Callable[[torch.Tensor], torch.Tensor]   # (T,) ids -> (T, V): row t predicts ids[t + 1]


def _timestep_defaults(data_cfg: dict) -> dict:
    from ..data.essen import SEED_DURATIONS

    d = {"dataset": "essen-erk", "seq_len": 64, "step": 0.25, "durations": list(SEED_DURATIONS), "transpose": True,
         "val_fraction": 0.1, "split_seed": 0, "delimiter_length": None, "condition": None}
    d.update({k: v for k, v in data_cfg.items() if k in d and v is not None})
    if d["delimiter_length"] is None:
        d["delimiter_length"] = d["seq_len"]
    return d


def load_scorer(spec: str, data: str, device: str = "cpu") -> Scorer:
    """A run directory, ``zoo:NAME`` or ``ngram:N[:DATASET]``."""
    if str(spec).startswith("ngram:"):
        return _ngram_scorer(str(spec), data)
    from ..training.checkpoint import load_run

    model, codec, cfg, _ = load_run(spec, device)
    return model_scorer(model, codec, cfg, str(spec))


def model_scorer(model, codec, cfg, name: str = "model") -> Scorer:
    """A Scorer for a loaded time-step likelihood model (``load_run``'s first three values)."""
    family = cfg.model.get("name")
    if cfg.data.get("encoding") != "timestep" or family not in ("melody_lstm", "melody_transformer"):
        raise TunesmithError(f"{name} is a {family!r} model; score takes time-step likelihood models "
                             "(melody_lstm, melody_transformer) or ngram:N")
    d = _timestep_defaults(cfg.data)
    dev = model.device

    if family == "melody_lstm":
        @torch.no_grad()
        def log_probs(ids):
            model.eval()
            logits, _ = model.logits(ids[None].to(dev))
            return torch.log_softmax(logits[0].float(), -1).cpu()
    else:
        @torch.no_grad()
        def log_probs(ids):
            return model.log_probs(ids.to(dev)).cpu()
    return Scorer(name, codec, d, int(d["delimiter_length"]), log_probs)


def _ngram_scorer(spec: str, data: str) -> Scorer:
    from ..data.timestep import TimeStepCodec, _stream, encode_corpus
    from ..data.corpora import load_corpus, split_by_piece

    parts = spec.split(":", 2)
    try:
        order = int(parts[1])
    except ValueError:
        raise TunesmithError(f"{spec!r}: write ngram:N with an integer order, e.g. ngram:5") from None
    dataset = parts[2] if len(parts) > 2 else None
    if dataset is None:
        name = data.rsplit(":", 1)[0] if data.rsplit(":", 1)[-1] in SPLITS else data
        dataset = "essen-erk" if Path(name).exists() else name
    d = _timestep_defaults({"dataset": dataset})
    kept, _ = encode_corpus(load_corpus(dataset), d["step"], d["durations"], d["transpose"], verbose=False)
    train, _ = split_by_piece(kept, d["val_fraction"], d["split_seed"])
    codec = TimeStepCodec.from_corpus([s for _, s in kept], d["step"], d["seq_len"])
    stream = _stream([s for _, s in train], codec, d["delimiter_length"]).tolist()
    model = NGram(stream, len(codec.vocab), order)
    return Scorer(spec, codec, d, max(order - 1, 1), model.log_probs)


# ------------------------------------------------------------------------------------------------ data
def load_pieces(data: str, data_cfg: dict) -> list[tuple[str, list[str]]]:
    """(name, symbols) for every song of ``data``, filtered and transposed as the model's run did."""
    from ..data.corpora import load_corpus, split_by_piece
    from ..data.timestep import encode_corpus, song_labels

    split = None
    name = str(data)
    if not Path(name).exists() and ":" in name and name.rsplit(":", 1)[1] in SPLITS:
        name, split = name.rsplit(":", 1)
    elif not Path(name).exists() and ":" in name:
        raise TunesmithError(f"unknown split in {data!r}: use DATASET:train or DATASET:val")
    kept, _ = encode_corpus(load_corpus(name), data_cfg["step"], data_cfg["durations"], data_cfg["transpose"],
                            verbose=False)
    if split is not None:
        train, val = split_by_piece(kept, data_cfg["val_fraction"], data_cfg["split_seed"])
        kept = val if split == "val" else train
    if not kept:
        raise TunesmithError(f"{data} has no songs to score")
    cond = data_cfg.get("condition")  # a conditioned model is given each song's true labels (not scored)
    return [(sc.title or f"piece {i:03d}", (song_labels(sc, cond) if cond else []) + syms)
            for i, (sc, syms) in enumerate(kept)]


# ------------------------------------------------------------------------------------------------ scoring
def score_piece(scorer: Scorer, symbols: list[str]) -> dict:
    """Negative log-likelihood (nats), correct guesses and counts for one song (see the module doc).
    Leading label tokens (``<metre=3/4>``) are given as context and not scored."""
    from ..data.timestep import is_label

    codec = scorer.codec
    d = codec.index["/"]
    given = 0
    while given < len(symbols) and is_label(symbols[given]):
        given += 1
    symbols = list(symbols)
    ids = [d] * scorer.prefix + codec.encode(symbols) + [d]
    first = scorer.prefix + given                 # the first scored symbol
    lp = scorer.log_probs(torch.tensor(ids, dtype=torch.long))[first - 1:-1].clone()  # predicts song + '/'
    target = torch.tensor(ids[first:])
    symbols = symbols[given:]
    lp[0, d] = float("-inf")                      # a song starts here: its first symbol is not '/'
    lp[0] = torch.log_softmax(lp[0], -1)
    nll = -lp.gather(1, target[:, None])[:, 0]
    notes = sum(1 for s in symbols if s.isdigit())
    return {"steps": len(target), "notes": notes, "nll": float(nll.sum()),
            "correct": int((lp.argmax(-1) == target).sum()),
            "by_position": [[float(nll[a:b].sum()), len(nll[a:b])] for a, b in POSITION_BUCKETS]}


def score(spec: str, data: str, device: str = "cpu") -> dict:
    """Score a run directory, ``zoo:NAME`` or ``ngram:N`` on ``data`` (see the module doc)."""
    return score_with(load_scorer(spec, data, device), data)


def score_with(scorer: Scorer, data: str) -> dict:
    pieces = []
    by_pos = [[0.0, 0] for _ in POSITION_BUCKETS]
    skipped = 0
    vocab = set(scorer.codec.vocab)
    for name, syms in load_pieces(data, scorer.data_cfg):
        if not set(syms) <= vocab:
            skipped += 1
            continue
        r = score_piece(scorer, syms)
        for k, (tot, n) in enumerate(r.pop("by_position")):
            by_pos[k][0] += tot
            by_pos[k][1] += n
        pieces.append({"piece": name, **r, "nats_per_step": r["nll"] / r["steps"],
                       "bits_per_note": r["nll"] / LN2 / max(r["notes"], 1), "accuracy": r["correct"] / r["steps"]})
    if not pieces:
        raise TunesmithError(f"none of the songs in {data} fits the model's vocabulary (pitches outside its range)")
    steps = sum(p["steps"] for p in pieces)
    nll = sum(p["nll"] for p in pieces)
    mean = {"nats_per_step": nll / steps, "bits_per_note": nll / LN2 / max(sum(p["notes"] for p in pieces), 1),
            "accuracy": sum(p["correct"] for p in pieces) / steps, "pieces": len(pieces), "steps": steps,
            "notes": sum(p["notes"] for p in pieces), "skipped_out_of_vocabulary": skipped,
            "by_position": {f"{a}-{b - 1 if b else ''}": {"nats_per_step": tot / n, "steps": n}
                            for (a, b), (tot, n) in zip(POSITION_BUCKETS, by_pos) if n}}
    given = scorer.data_cfg.get("condition")
    extra = {"given": f"each song's true {', '.join(given)} label (not scored)"} if given else {}
    return {"model": scorer.name, "data": str(data), "prefix_delimiters": scorer.prefix, **extra, "mean": mean,
            "pieces": pieces}


def score_command(spec: str, data: str, out: str | Path | None = None, device: str = "cpu",
                  quiet: bool = False) -> dict:
    """Print the per-piece table and the mean (last line); write ``score.json`` to ``out`` when given."""
    if out is not None:  # a file in the way or an unwritable place fails before the scoring, with one line
        from ..sampling.checks import check_out_folder

        if Path(out).suffix == ".json":
            if Path(out).is_dir():
                raise TunesmithError(f"--out {out} is a folder: give a .json file name or a folder without .json")
            check_out_folder(Path(out).parent, "--out", "the folder of --out")
        else:
            check_out_folder(out)
    res = score(spec, data, device)
    if not quiet:
        print(f"{'piece':<44} {'steps':>6} {'notes':>6} {'nats/step':>10} {'bits/note':>10} {'accuracy':>9}")
        for p in res["pieces"]:
            print(f"{p['piece'][:44]:<44} {p['steps']:>6} {p['notes']:>6} {p['nats_per_step']:>10.3f} "
                  f"{p['bits_per_note']:>10.3f} {p['accuracy']:>9.3f}")
    m = res["mean"]
    if m["skipped_out_of_vocabulary"]:
        print(f"warning: {m['skipped_out_of_vocabulary']} songs skipped (pitches outside the model's vocabulary)",
              file=sys.stderr)
    if out is not None:
        from ..config import save_json

        path = Path(out)
        if path.suffix != ".json":
            path.mkdir(parents=True, exist_ok=True)
            path = path / "score.json"
        save_json(res, path)
        print(f"wrote {path}", file=sys.stderr)
    print(f"{m['pieces']} pieces, {m['steps']} steps, {m['notes']} notes; {res['model']} on {res['data']}")
    if res.get("given"):
        print(f"conditioned: the model is given {res['given']}")
    print("nats/step by step of the song: " + ", ".join(f"{k}: {v['nats_per_step']:.3f}"
                                                          for k, v in m["by_position"].items()))
    print(f"mean: {m['nats_per_step']:.3f} nats/step, {m['bits_per_note']:.3f} bits/note, accuracy {m['accuracy']:.3f}")
    return res
