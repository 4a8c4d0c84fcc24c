"""A small metre classifier for melodies without bar lines (issue 16, item 3: is a metre-conditioned sample
in the metre it was asked for?).

Features (all computed from onsets and durations on the 16th-note grid, none from a time signature):

* **periodicity**: for periods ``P`` of 2..32 steps, ``|sum_n w_n exp(2 pi i t_n / P)| / sum_n w_n`` over the
  note onsets ``t_n`` (unweighted and weighted by duration) -- how strongly the onsets repeat every ``P``
  steps, whatever the bar line's phase;
* **bar position from the end**: a song ends on a bar line, so ``(end - t_n) mod B`` for bar lengths
  ``B`` = 6, 8, 12, 16 steps places the onsets in the bar without knowing the pickup (histograms, duration
  weighted) -- this separates 6/8 (a stress every 6 steps) from 3/4 (every 4) in a 12-step bar;
* **durations**: the share of notes of each length (1, 2, 3, 4, 6, 8, 12, 16 steps), and the song length
  modulo each bar length.

Model: multinomial logistic regression (standardised features, L2), fitted with L-BFGS in a second or two on
the training songs of the time-step split; metres with fewer than ``min_songs`` training songs are left out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..data.notes import Score
from ..errors import TunesmithError

PERIODS = (2, 3, 4, 6, 8, 12, 16, 24, 32)
BARS = (6, 8, 12, 16)
DUR_STEPS = (1, 2, 3, 4, 6, 8, 12, 16)


def metre_name(ts) -> str:
    return f"{int(ts[0])}/{int(ts[1])}"


def features(score: Score, step: float = 0.25) -> np.ndarray:
    """The feature vector of one melody (see the module doc)."""
    s = score.pitched()
    if len(s) == 0:
        return np.zeros(feature_size())
    t = np.round(np.asarray(s.start, float) / step)
    d = np.maximum(np.round(np.asarray(s.duration, float) / step), 1)
    end = float(np.max(t + d))
    out = []
    for w in (np.ones_like(d), d):
        for P in PERIODS:
            z = np.sum(w * np.exp(2j * math.pi * t / P))
            out.append(abs(z) / w.sum())
    for B in BARS:
        pos = np.mod(end - t, B).astype(int)
        h = np.bincount(pos, weights=np.sqrt(d), minlength=B)[:B]
        out.extend(h / max(h.sum(), 1e-9))
        out.append(math.cos(2 * math.pi * end / B))
    out.extend(np.array([np.mean(d == k) for k in DUR_STEPS]))
    return np.asarray(out, float)


def feature_size() -> int:
    return 2 * len(PERIODS) + sum(BARS) + len(BARS) + len(DUR_STEPS)


@dataclass
class LinearClassifier:
    """Multinomial logistic regression over standardised features of a melody (``featurize``)."""
    labels: list[str]
    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray    # (features, classes)
    bias: np.ndarray
    featurize: Callable = features

    def predict_proba(self, scores: list[Score]) -> np.ndarray:
        X = (np.stack([self.featurize(s) for s in scores]) - self.mean) / self.std
        z = X @ self.weight + self.bias
        z = z - z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def predict(self, scores: list[Score]) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(scores).argmax(1)]


MetreClassifier = LinearClassifier


def fit_linear(X: np.ndarray, y: np.ndarray, labels: list[str], featurize: Callable, l2: float = 1e-2,
               seed: int = 0) -> LinearClassifier:
    """L2-regularised multinomial logistic regression (L-BFGS) on feature rows ``X`` and class ids ``y``."""
    mean, std = X.mean(0), X.std(0) + 1e-6
    Xt = torch.tensor((X - mean) / std, dtype=torch.float64)
    yt = torch.tensor(y)
    torch.manual_seed(seed)
    W = torch.zeros(X.shape[1], len(labels), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(labels), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Xt @ W + b, yt) + l2 * (W ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return LinearClassifier(labels, mean, std, W.detach().numpy(), b.detach().numpy(), featurize)


def truncate(score: Score, fraction: float) -> Score:
    """The melody cut after ``fraction`` of its length, at the first onset from there (so it no longer ends on
    a bar line, as a sampled melody need not): a classifier fitted with such crops cannot lean on the ending."""
    s = score.pitched()
    cut = score.length * fraction
    later = s.start[s.start >= cut]
    end = float(later.min()) if len(later) else score.length
    keep = s.start < end
    out = Score.from_notes(zip(s.pitch[keep], s.start[keep], np.minimum(s.duration[keep], end - s.start[keep])),
                           time_signature=score.time_signature, key=score.key, end=end)
    return out


def fit(scores: list[Score], min_songs: int = 20, l2: float = 1e-2, seed: int = 0, crops: int = 0) -> MetreClassifier:
    """Fit on songs labelled by their own (first) time signature. ``crops`` > 0 adds that many copies of each
    song cut at a random point between 40 % and 95 % of its length (:func:`truncate`), so the classifier does
    not need the song to end on a bar line."""
    names = [metre_name(s.time_signature) for s in scores]
    counts = {n: names.count(n) for n in set(names)}
    labels = sorted(n for n, c in counts.items() if c >= min_songs)
    if len(labels) < 2:
        raise TunesmithError(f"a metre classifier needs two metres with >= {min_songs} songs each; got {counts}")
    keep = [i for i, n in enumerate(names) if n in labels]
    rng = np.random.default_rng(seed)
    items = [(scores[i], names[i]) for i in keep]
    items += [(truncate(scores[i], float(rng.uniform(0.4, 0.95))), names[i]) for i in keep for _ in range(crops)]
    X = np.stack([features(s) for s, _ in items])
    y = np.array([labels.index(n) for _, n in items])
    return fit_linear(X, y, labels, features, l2, seed)


def evaluate(clf: MetreClassifier, scores: list[Score]) -> dict:
    """Accuracy and confusion (true -> predicted counts) on songs of the classifier's metres."""
    items = [s for s in scores if metre_name(s.time_signature) in clf.labels]
    if not items:
        raise TunesmithError("no songs in the classifier's metres to evaluate")
    pred = clf.predict(items)
    true = [metre_name(s.time_signature) for s in items]
    conf: dict[str, dict[str, int]] = {a: {b: 0 for b in clf.labels} for a in clf.labels}
    for a, b in zip(true, pred):
        conf[a][b] += 1
    per = {a: conf[a][a] / max(sum(conf[a].values()), 1) for a in clf.labels}
    return {"songs": len(items), "accuracy": float(np.mean([a == b for a, b in zip(true, pred)])),
            "per_metre": per, "confusion": conf, "left_out": len(scores) - len(items)}
