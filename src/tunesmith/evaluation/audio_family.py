"""Which instrument family does a note sound like? A small classifier trained on the real training notes
of an NSynth-layout dataset with a fixed split (``nsynth-small``), and the per-family MFCC baselines.

* Features of a clip (peak-normalised, 16 kHz), over the frames within 60 dB of the loudest: the mean of
  64 log-mel bands, mean and standard deviation of 20 MFCCs, the standard deviation of their deltas, the
  loudness envelope (RMS in dB relative to the loudest frame, at 16 points over the clip), spectral
  centroid / flatness statistics, and pitch-independent harmonic features (the first 12 harmonics' levels,
  the decay of the first 4, the noise share, the odd/even ratio): 162 numbers, standardised with the
  training notes' mean and deviation.
* Classifier: a one-hidden-layer MLP (162 -> 64 -> families, dropout 0.2, Adam 3e-3, weight decay 1e-3, 400
  full-batch epochs with Gaussian input noise 0.05, seed 0) trained on the ``train`` notes. Its accuracy on
  the ``valid`` notes (instruments it never heard) is reported beside every family accuracy it gives; the
  features were chosen looking at that figure, so the ``test`` notes' accuracy is the unbiased one.
* Per note, the sufficient statistics of its 13-coefficient MFCC frames (the same frames as
  :func:`tunesmith.evaluation.audio_metrics.evaluate_audio`), from which
  :func:`family_frechet_baseline` gives, per family F, the Frechet distance of real held-out notes of F to
  real held-out notes of every other family (``wrong``: the figure a generated "F" must beat) and of the
  training notes of F (``right``: different instruments of the same family).

Everything is computed once per dataset content (the hash of its examples.json) and cached under
``$TUNESMITH_CACHE/audio_eval/`` (about two minutes of one core for nsynth-small's 4,125 notes).
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import TunesmithError
from .audio_metrics import _gauss, _load, frechet_distance, mfcc_frames, wav_paths

VERSION = 2
HIDDEN = 64
SR = 16000
N_MELS, N_MFCC, N_ENV, N_HARM = 64, 20, 16, 12


def harmonic_features(x: np.ndarray, sr: int = SR) -> np.ndarray:
    """Pitch-independent timbre: the first 12 harmonics' mean level (dB / 20, relative to the loudest) over
    the sounding frames, the decay slopes of the first 4 (dB/s / 20), the log share of energy outside the
    harmonics (noise) and the log odd/even harmonic ratio; f0 is YIN's median over sounding frames."""
    import librosa

    S = np.abs(librosa.stft(x, n_fft=2048, hop_length=512))
    energy = S.sum(0)
    loud = energy > 0.05 * max(float(energy.max()), 1e-12)
    if loud.sum() < 3:
        return np.zeros(N_HARM + 6, np.float32)
    f0 = librosa.yin(x, fmin=55, fmax=2000, sr=sr, frame_length=2048, hop_length=512)[: S.shape[1]]
    f = float(np.median(f0[loud[: len(f0)]]))
    amps = []
    for k in range(1, N_HARM + 1):
        b = int(round(k * f * 2048 / sr))
        amps.append(S[max(0, b - 1):b + 2].max(0) if b + 1 < S.shape[0] else np.zeros(S.shape[1]))
    H = np.array(amps)[:, loud] + 1e-6
    level = 20 * np.log10(H / H.max())
    t = np.flatnonzero(loud) * 512 / sr
    slopes = [np.polyfit(t, 20 * np.log10(H[k]), 1)[0] for k in range(4)]
    total = float((S[:, loud] ** 2).sum())
    noise = np.log(max(total - float((H ** 2).sum()), 1e-8) / max(total, 1e-8))
    odd_even = np.log(H[0::2].sum() / H[1::2].sum())
    return np.concatenate([level.mean(1) / 20, np.array(slopes) / 20, [noise, odd_even]]).astype(np.float32)


def clip_features(x: np.ndarray, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """(classifier features (162,), 13-coefficient MFCC frames (frames, 13)) of one clip."""
    import librosa

    x = np.asarray(x, np.float32)
    peak = float(np.abs(x).max()) if len(x) else 0.0
    x = x / peak if peak > 0 else x
    S = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=1024, hop_length=256, n_mels=N_MELS)
    logmel = librosa.power_to_db(S + 1e-10, ref=1.0, top_db=None)
    loud = logmel.max(0) > logmel.max() - 60  # frames within 60 dB of the loudest: the note, not the silence
    if not loud.any():
        loud[:] = True
    mf = librosa.feature.mfcc(S=logmel, n_mfcc=N_MFCC)
    d = librosa.feature.delta(mf) if mf.shape[1] >= 9 else np.zeros_like(mf)
    rms = librosa.feature.rms(y=x, frame_length=1024, hop_length=256)[0]
    env_db = 20 * np.log10(np.maximum(rms, 1e-5) / max(float(rms.max()), 1e-5))
    env = np.interp(np.linspace(0, len(env_db) - 1, N_ENV), np.arange(len(env_db)), env_db)
    cent = librosa.feature.spectral_centroid(y=x, sr=sr, n_fft=1024, hop_length=256)[0]
    cent = cent[loud[: len(cent)]] if len(cent) == len(loud) else cent
    flat = librosa.feature.spectral_flatness(y=x, n_fft=1024, hop_length=256)[0]
    feats = np.concatenate([logmel[:, loud].mean(1), mf[:, loud].mean(1), mf[:, loud].std(1), d[:, loud].std(1),
                            env / 10.0,
                            [np.log(cent.mean() + 1), np.log(cent.std() + 1), np.log(flat.mean() + 1e-8),
                             np.log(flat.std() + 1e-8)], harmonic_features(x, sr)]).astype(np.float32)
    return np.nan_to_num(feats), mfcc_frames(x, sr)


class FamilyClassifier:
    """A trained family classifier: ``predict(features)``, ``labels``, ``val_accuracy``, ``confusion``."""

    def __init__(self, state: dict):
        self.state = state
        self.labels: list[str] = list(state["labels"])
        self.val_accuracy: float = float(state["val_accuracy"])
        self.confusion = np.asarray(state["confusion"])
        self.dataset: str = state["dataset"]

    def _net(self):
        import torch

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(self.state["mean"].shape[0], HIDDEN), torch.nn.ReLU(),
                                  torch.nn.Dropout(0.2), torch.nn.Linear(HIDDEN, len(self.labels)))
        if "weights" in self.state:
            net.load_state_dict({k: torch.as_tensor(v) for k, v in self.state["weights"].items()})
        return net

    def val_recall(self) -> dict[str, float]:
        """Per family, the share of its held-out (valid) notes classified as that family."""
        c = np.asarray(self.confusion, float)
        return {f: float(c[i, i] / c[i].sum()) if c[i].sum() else float("nan") for i, f in enumerate(self.labels)}

    def logits(self, feats: np.ndarray) -> np.ndarray:
        import torch

        z = (np.asarray(feats, np.float32) - self.state["mean"]) / self.state["std"]
        net = self._net().eval()
        with torch.no_grad():
            return net(torch.as_tensor(z, dtype=torch.float32)).numpy()

    def predict(self, feats: np.ndarray) -> list[str]:
        return [self.labels[i] for i in self.logits(feats).argmax(1)]


def _train(Xt, yt, Xv, yv, labels, epochs: int = 400) -> dict:
    import torch

    mean, std = Xt.mean(0), Xt.std(0) + 1e-6
    state = {"mean": mean.astype(np.float32), "std": std.astype(np.float32), "labels": labels,
             "val_accuracy": 0.0, "confusion": [], "dataset": ""}
    net = FamilyClassifier(state)._net()
    xt = torch.as_tensor((Xt - mean) / std, dtype=torch.float32)
    ytt = torch.as_tensor(yt)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        net.train()
        noise = 0.05 * torch.randn(xt.shape, generator=g)
        loss = torch.nn.functional.cross_entropy(net(xt + noise), ytt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    state["weights"] = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    clf = FamilyClassifier(state)
    pred = clf.logits(Xv).argmax(1)
    conf = np.zeros((len(labels), len(labels)), int)
    for a, b in zip(yv, pred):
        conf[a, b] += 1
    state["val_accuracy"] = float((pred == yv).mean()) if len(yv) else float("nan")
    state["confusion"] = conf
    state["train_accuracy"] = float((clf.logits(Xt).argmax(1) == yt).mean())
    return state


def _dataset_clips(reference: str):
    from ..data.nsynth import find_dataset, has_fixed_split, load_nsynth, parse_name

    base, _ = parse_name(reference)
    folder, layout = find_dataset(base)
    if layout != "nsynth":
        raise TunesmithError(f"family accuracy needs an NSynth-layout reference dataset, not {reference}")
    clips = load_nsynth(folder)
    if not has_fixed_split(clips):
        raise TunesmithError(f"family accuracy needs a dataset split by instrument (e.g. nsynth-small); {base} "
                             "has no fixed split")
    h = hashlib.sha256((folder / "examples.json").read_bytes()).hexdigest()[:16]
    return base, clips, h


def _cache_path(base: str, h: str) -> Path:
    from ..data.corpora import cache_dir

    name = Path(base).name if Path(base).exists() else base
    return cache_dir() / "audio_eval" / f"{name}-{h}-v{VERSION}.npz"


_MEMO: dict[str, dict] = {}
_FEATURES: dict[str, tuple] = {}


def reference_model(reference: str = "nsynth-small", verbose: bool = True) -> dict:
    """The cached evaluation model of a dataset: ``{"classifier": FamilyClassifier, "gauss": per-note MFCC
    frame statistics ({"split", "family", "n", "s1", "s2"} arrays), "labels", "seconds"}``; built (and
    cached) on first use."""
    base, clips, h = _dataset_clips(reference)
    path = _cache_path(base, h)
    if str(path) in _MEMO:
        return _MEMO[str(path)]
    if path.is_file():
        z = np.load(path, allow_pickle=True)
        state = z["state"].item()
        gauss = z["gauss"].item()
        seconds = float(z["seconds"])
    else:
        state, gauss, seconds = _build(base, clips, verbose)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, state=np.array(state, dtype=object), gauss=np.array(gauss, dtype=object),
                 seconds=np.array(seconds))
        tmp.replace(path)
    model = {"classifier": FamilyClassifier(state), "gauss": gauss, "labels": list(state["labels"]),
             "seconds": seconds, "cache": str(path)}
    _MEMO[str(path)] = model
    return model


def _build(base: str, clips, verbose: bool):
    from ..data.nsynth import NSYNTH_FAMILIES

    t0 = time.time()
    use = [c for c in clips if c.split in ("train", "valid", "test")]
    labels = sorted({c.label for c in use}, key=lambda s: (NSYNTH_FAMILIES.index(s) if s in NSYNTH_FAMILIES
                                                          else 99, s))
    feats, notes = [], {"split": [], "family": [], "n": [], "s1": [], "s2": []}
    for i, c in enumerate(use):
        f, mf = clip_features(_load(c.path, SR, None))
        feats.append(f)
        for k, v in (("split", c.split), ("family", c.label), ("n", len(mf)), ("s1", mf.sum(0)), ("s2", mf.T @ mf)):
            notes[k].append(v)
        if verbose and (i + 1) % 100 == 0:
            print(f"\rfamily classifier for {base}: features of {i + 1}/{len(use)} notes", end="", file=sys.stderr,
                  flush=True)
    if verbose:
        print(file=sys.stderr)
    X = np.stack(feats)
    y = np.array([labels.index(c.label) for c in use])
    tr = np.array([c.split == "train" for c in use])
    va = np.array([c.split == "valid" for c in use])
    _FEATURES[base] = (X, y, tr, va, [c.instrument for c in use])  # kept for experiments in the same process
    state = _train(X[tr], y[tr], X[va], y[va], labels)
    state["dataset"] = base
    te = ~(tr | va)
    if te.any():
        state["test_accuracy"] = float((FamilyClassifier(state).logits(X[te]).argmax(1) == y[te]).mean())
    gauss = {k: np.asarray(v) for k, v in notes.items()}  # per-note sufficient statistics of MFCC frames
    seconds = time.time() - t0
    if verbose:
        print(f"family classifier for {base}: held-out accuracy {state['val_accuracy']:.3f} on {int(va.sum())} "
              f"notes of unseen instruments (train {state['train_accuracy']:.3f}; {seconds:.0f} s, cached)",
              file=sys.stderr)
    return state, gauss, seconds


def family_accuracy(wavs, reference: str = "nsynth-small", sample_rate: int = SR) -> dict:
    """Share of files the reference dataset's classifier assigns to the family they were asked to be
    (``samples.json`` or an NSynth-style name). Returns ``{"family_accuracy" (None if no file says its
    family), "n_family_labelled", "classifier_val_accuracy", "classifier_dataset", "predicted": {family:
    count}, "per_file": {path: {"requested", "predicted", "hit"}}}``."""
    from ..data.nsynth import read_sample_labels, requested_labels

    model = reference_model(reference)
    clf = model["classifier"]
    rows, feats = [], []
    cache: dict[Path, dict] = {}
    for p in wav_paths(wavs):
        if p.parent not in cache:
            cache[p.parent] = read_sample_labels(p.parent)
        want = requested_labels(p, cache[p.parent])[1]
        rows.append((p, want))
        feats.append(clip_features(_load(p, sample_rate, None), sample_rate)[0])
    pred = clf.predict(np.stack(feats)) if feats else []
    per, hits, counts = {}, [], {}
    for (p, want), got in zip(rows, pred):
        counts[got] = counts.get(got, 0) + 1
        hit = None if want is None else bool(got == want)
        per[str(p)] = {"requested": want, "predicted": got, "hit": hit}
        if want is not None:
            if want not in clf.labels:
                raise TunesmithError(f"{p.name} asks for family {want!r}, which {clf.dataset} does not have; "
                                     f"known: {', '.join(clf.labels)}")
            hits.append(hit)
    return {"family_accuracy": float(np.mean(hits)) if hits else None, "n_family_labelled": len(hits),
            "classifier_val_accuracy": clf.val_accuracy, "classifier_dataset": clf.dataset,
            "classifier_val_recall": clf.val_recall(),
            "predicted": counts, "per_file": per}


def _fd(a, b) -> float:
    return frechet_distance(a[0], a[1], b[0], b[1])


def _pooled(notes: dict, idx) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian (mean, covariance + ridge) of the MFCC frames of the notes ``idx``."""
    idx = np.asarray(idx)
    n = float(notes["n"][idx].sum())
    mu = notes["s1"][idx].sum(0) / n
    cov = (notes["s2"][idx].sum(0) - n * np.outer(mu, mu)) / max(1.0, n - 1)
    ridge = 1e-6 * max(float(np.trace(cov)) / len(cov), 1e-3)
    return mu, cov + ridge * np.eye(len(cov))


def family_frechet_baseline(reference: str = "nsynth-small", split: str = "valid", n: int | None = None,
                            draws: int = 5, seed: int = 0) -> dict:
    """Per family F, the MFCC Frechet distance to all real ``split`` notes of F of: ``wrong`` = real
    ``split`` notes of each other family G (mean over G; ``wrong_min``: the closest G), ``right`` = F's
    training notes (other instruments of the same family). With ``n``, each of those sets is ``n`` notes
    drawn at random (mean over ``draws`` draws), so the baseline matches a generated set of ``n`` notes (the
    Frechet distance of a small set includes its narrower spread). A generated set asked to be F beats the
    baseline when its distance to F's real notes is below ``wrong``."""
    split = {"val": "valid"}.get(split, split)
    notes = reference_model(reference)["gauss"]
    rng = np.random.default_rng(seed)

    def sub(mask):
        idx = np.flatnonzero(mask)
        if n is None or n >= len(idx):
            return [_pooled(notes, idx)]
        return [_pooled(notes, rng.choice(idx, n, replace=False)) for _ in range(draws)]

    fams = sorted(set(notes["family"][notes["split"] == split].tolist()))
    per = {}
    for f in fams:
        target = _pooled(notes, np.flatnonzero((notes["split"] == split) & (notes["family"] == f)))
        others = [float(np.mean([_fd(g, target) for g in sub((notes["split"] == split) & (notes["family"] == o))]))
                  for o in fams if o != f]
        tr = (notes["split"] == "train") & (notes["family"] == f)
        right = float(np.mean([_fd(g, target) for g in sub(tr)])) if tr.any() else None
        per[f] = {"wrong": float(np.mean(others)) if others else None,
                  "wrong_min": float(np.min(others)) if others else None, "right": right}
    mean = lambda k: float(np.mean([v[k] for v in per.values() if v[k] is not None]))  # noqa: E731
    return {"per_family": per, "mean_wrong": mean("wrong"), "mean_right": mean("right"), "split": split, "n": n}


def family_frechet(wavs, reference: str = "nsynth-small", split: str = "valid", sample_rate: int = SR) -> dict:
    """MFCC Frechet distance of the generated notes asked to be family F to the real ``split`` notes of F,
    per F, next to :func:`family_frechet_baseline`'s ``wrong`` and ``right`` for F computed with as many real
    notes as there are generated ones. ``beats_wrong``: the share of families whose generated notes are
    closer to their family than real notes of other families are. Files without a requested family are
    left out."""
    from ..data.nsynth import read_sample_labels, requested_labels

    split = {"val": "valid"}.get(split, split)
    notes = reference_model(reference)["gauss"]
    frames: dict[str, list] = {}
    cache: dict[Path, dict] = {}
    for p in wav_paths(wavs):
        if p.parent not in cache:
            cache[p.parent] = read_sample_labels(p.parent)
        want = requested_labels(p, cache[p.parent])[1]
        if want is None:
            continue
        x = _load(p, sample_rate, None)
        peak = float(np.abs(x).max()) if len(x) else 0.0
        frames.setdefault(want, []).append(mfcc_frames(x / peak if peak > 0 else x, sample_rate))
    per = {}
    for f, fr in frames.items():
        mask = (notes["split"] == split) & (notes["family"] == f)
        if not mask.any():
            continue
        fd = _fd(_gauss(np.concatenate(fr)), _pooled(notes, np.flatnonzero(mask)))
        b = family_frechet_baseline(reference, split, n=len(fr))["per_family"][f]
        per[f] = {"generated": fd, "n": len(fr), "wrong": b["wrong"], "wrong_min": b["wrong_min"], "right": b["right"],
                  "beats_wrong": b["wrong"] is not None and fd < b["wrong"]}
    return {"per_family": per, "beats_wrong": float(np.mean([v["beats_wrong"] for v in per.values()])) if per else None,
            "mean_generated": float(np.mean([v["generated"] for v in per.values()])) if per else None,
            "mean_wrong": float(np.mean([v["wrong"] for v in per.values()])) if per else None}


def describe(reference: str = "nsynth-small") -> dict:
    """The classifier's figures for docs and reports."""
    m = reference_model(reference)
    c = m["classifier"]
    return {"dataset": c.dataset, "labels": c.labels, "val_accuracy": c.val_accuracy,
            "train_accuracy": float(c.state.get("train_accuracy", float("nan"))),
            "test_accuracy": float(c.state.get("test_accuracy", float("nan"))),
            "val_recall": c.val_recall(), "confusion": np.asarray(c.confusion).tolist(), "build_seconds": m["seconds"], "cache": m["cache"]}


if __name__ == "__main__":  # python -m tunesmith.evaluation.audio_family [DATASET]
    ds = sys.argv[1] if len(sys.argv) > 1 else "nsynth-small"
    print(json.dumps({"classifier": describe(ds), "frechet_baseline": family_frechet_baseline(ds)}, indent=1))
