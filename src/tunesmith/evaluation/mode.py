"""A small mode classifier (major / minor) for melodies (issue 16, item 3: is a mode-conditioned sample in the
mode it was asked for?).

The labels it learns are the ones the conditioned models are trained with (``data.timestep.song_mode``: the
corpus's "minor" annotation, else Krumhansl-Schmuckler key estimation -- the Erk songs' own annotations all read
"major"). Features, from the notes only: the duration-weighted pitch-class histogram (12), the pitch class of
the last note and of the first note (one-hot, 12 each), and the histogram of the last quarter of the melody
(12): cadences carry the mode. Model: the metre classifier's multinomial logistic regression
(:func:`tunesmith.evaluation.metre.fit_linear`). The songs are transposed to C major / A minor as the models see
them, but nothing here assumes it.
"""
from __future__ import annotations

import numpy as np

from ..data.notes import Score
from ..errors import TunesmithError
from .metre import LinearClassifier, fit_linear

MODES = ("major", "minor")


def mode_features(score: Score) -> np.ndarray:
    s = score.pitched().sorted()
    out = np.zeros(48)
    if len(s) == 0:
        return out
    pc = s.pitch.astype(int) % 12
    h = np.bincount(pc, weights=s.duration, minlength=12)
    out[:12] = h / max(h.sum(), 1e-9)
    order = np.argsort(s.start, kind="stable")
    out[12 + pc[order[-1]]] = 1.0
    out[24 + pc[order[0]]] = 1.0
    late = s.start >= 0.75 * score.length
    hl = np.bincount(pc[late], weights=s.duration[late], minlength=12)
    out[36:] = hl / max(hl.sum(), 1e-9)
    return out


def fit(scores: list[Score], l2: float = 1e-2, seed: int = 0) -> LinearClassifier:
    """Fit on songs labelled with their mode (``data.timestep.song_mode``)."""
    from ..data.timestep import song_mode

    y = [song_mode(s) for s in scores]
    if len(set(y)) < 2:
        raise TunesmithError("a mode classifier needs songs of both modes")
    X = np.stack([mode_features(s) for s in scores])
    return fit_linear(X, np.array([MODES.index(m) for m in y]), list(MODES), mode_features, l2, seed)


def evaluate(clf: LinearClassifier, scores: list[Score]) -> dict:
    """Accuracy and confusion (true -> predicted counts) against ``song_mode`` labels."""
    from ..data.timestep import song_mode

    true = [song_mode(s) for s in scores]
    pred = clf.predict(scores)
    conf = {a: {b: 0 for b in clf.labels} for a in clf.labels}
    for a, b in zip(true, pred):
        conf[a][b] += 1
    per = {a: conf[a][a] / max(sum(conf[a].values()), 1) for a in clf.labels}
    return {"songs": len(scores), "accuracy": float(np.mean([a == b for a, b in zip(true, pred)])),
            "per_mode": per, "confusion": conf}
