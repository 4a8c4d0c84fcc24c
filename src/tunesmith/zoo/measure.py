"""The figures on a zoo model's card, measured by the project's own code (``scripts/train_zoo.sh`` writes
them after exporting; ``tests/test_zoo.py`` measures them again and compares).

Every measurement is seeded, so the same weights on the same machine give the same figures; the test
allows a small tolerance for other CPUs and library versions.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import TunesmithError
from ..training.checkpoint import load_run

MEASURES: dict[str, Callable] = {}
#: allowed |fresh - card| per figure (absolute); figures not listed must match to 1e-6 relative
TOLERANCE = {"val_loss": 0.01, "val_accuracy": 0.005, "mean_overlap": 0.03, "onset_f1": 0.01,
             "score_nats_per_step": 0.01, "score_bits_per_note": 0.03, "score_accuracy": 0.005,
             "token_accuracy": 0.01, "scale_consistency": 0.01, "attribute_spearman_min": 0.1,
             "attribute_spearman_new_piece_min": 0.1,
             "in_scale": 0.02, "range_violations": 0.01, "parallels_per_100": 0.5, "voice_overlaps": 0.001,
             "composed_mean_overlap": 0.03, "composed_empty": 0, "nll_erased_random": 0.01,
             "nll_erased_harmonize": 0.01,
             "mean_overlap_phrase": 0.03, "distinct": 0.02, "pairwise_edit": 0.01, "copies": 0.02,
             "nearest_train": 0.01,
             "brass60_pitch_accuracy": 0.26, "brass60_family_accuracy": 0.26, "grid_pitch_accuracy": 0.05,
             "grid_family_accuracy": 0.05, "grid_fd_beats_wrong": 0.1, "grid_fd_mean": 500.0,
             "grid_fd_mean_wrong_family": 500.0, "classifier_val_accuracy": 0.02, "grid_notes": 0}


def measures(family: str):
    def deco(fn):
        MEASURES[family] = fn
        return fn
    return deco


def measure(run, quick: bool = False) -> dict:
    """The card figures of a run or ``zoo:NAME`` (``quick``: fewer samples, for a smoke test)."""
    model, codec, cfg, meta = load_run(run, "cpu")
    fam = cfg.model.get("name", "")
    if fam not in MEASURES:
        raise TunesmithError(f"no zoo figures are defined for model family {fam!r}")
    torch.manual_seed(0)
    return MEASURES[fam](model, codec, cfg, quick=quick)


def _overlap(gen, ref) -> float:
    from ..evaluation.report import evaluate

    return round(float(evaluate(gen, ref, None, plots=False)["headline"]["mean_overlap_area"]), 4)


def _scale_consistency(scores) -> float:
    """Mean over the pieces of the largest share of notes in any one major / natural minor scale (muspy's
    scale consistency, as ``tunesmith evaluate`` reports it)."""
    from ..evaluation.features import NoteBatch, scale_consistency

    return round(float(np.nanmean(scale_consistency(NoteBatch.from_scores(list(scores))))), 4)


def _validation(model, cfg) -> dict:
    from ..data.base import build_data
    from ..training.objectives import make_objective

    bundle = build_data(**cfg.data)
    v = make_objective(model, cfg.train).validate(model, bundle.val, cfg.train.batch_size, torch.device("cpu"), 10**9)
    return v


@measures("melody_lstm")
def _melody_lstm(model, codec, cfg, quick: bool = False) -> dict:
    from ..data.essen import prepared_songs
    from ..sampling.generate import generate

    v = _validation(model, cfg)
    n = 20 if quick else 100
    samples = generate(model, codec, n, seed=0, primer="", temperature=0.9, steps=500)
    _, ref = prepared_songs(cfg.data.get("dataset", "essen-erk"), verbose=False)
    return {"val_loss": round(float(v["loss"]), 4), "val_accuracy": round(float(v["acc"]), 4),
            f"mean_overlap": _overlap(samples, ref)}


@measures("melody_transformer")
def _melody_transformer(model, codec, cfg, quick: bool = False) -> dict:
    """The LSTM's figures plus `tunesmith score ... essen-erk:val` (each held-out song scored on its own)."""
    from ..evaluation.score import model_scorer, score_with

    figs = _melody_lstm(model, codec, cfg, quick)
    m = score_with(model_scorer(model, codec, cfg), f"{cfg.data.get('dataset', 'essen-erk')}:val")["mean"]
    figs.update({"score_nats_per_step": round(m["nats_per_step"], 4),
                 "score_bits_per_note": round(m["bits_per_note"], 4), "score_accuracy": round(m["accuracy"], 4)})
    return figs


def heldout_phrases(codec, dataset: str = "essen-erk") -> tuple[list, np.ndarray]:
    """The held-out songs cut into the model's consecutive phrases: (Scores, ids (N, L))."""
    from ..data.essen import prepared_songs

    _, val = prepared_songs(dataset, verbose=False)
    ids = np.array([p for sc in val for p in codec.phrases(sc)])
    return [codec.decode(r) for r in ids], ids


def attribute_sweep(model, codec, name: str, values=np.linspace(-3, 3, 13), z0: torch.Tensor | None = None):
    """Decode ``latent mean (+ z0) + value x attribute vector`` for each value (``model.decode``, what the web
    page plays); the attribute of each phrase."""
    from ..models.melody_vae import ATTRIBUTES

    j = ATTRIBUTES.index(name)
    base = model.slider_z(None) if z0 is None else z0[None]
    z = model.move_attribute(base, j, values)
    ids = model.decode(z).numpy()       # as the web page decodes a slider position
    return model.attributes(codec, ids)[:, j]


def new_piece_codes(model, n: int = 8, seed: int = 5) -> torch.Tensor:
    """n codes as the web page's "New piece" makes them: the latent sliders drawn from N(0, 1) (clamped to the
    sliders' +-3), the attributes at the sliders' centre."""
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([model.slider_z(torch.randn(model.n_sliders, generator=gen).clamp(-3, 3).tolist())
                      for _ in range(n)])


def attribute_spearman(model, codec, n_bases: int = 8) -> dict:
    """Spearman correlation between slider value and attribute, for each attribute: from the latent mean
    (``centre``), the mean over ``n_bases`` codes drawn at 0.5 sigma around it (``mean_over_bases``) and the
    mean over ``n_bases`` codes of the page's "New piece" (``after_new_piece``, :func:`new_piece_codes`)."""
    from ..models.melody_vae import ATTRIBUTES, spearman

    values = np.linspace(-3, 3, 13)
    gen = torch.Generator().manual_seed(0)
    bases = torch.randn(n_bases, model.latent_dim, generator=gen) * 0.5 + model.latent_mean
    pieces = new_piece_codes(model, n_bases)
    out = {}
    for name in ATTRIBUTES:
        rho = lambda z0=None: spearman(values, attribute_sweep(model, codec, name, values, z0))  # noqa: E731
        out[name] = {"centre": round(rho(), 4), "mean_over_bases": round(float(np.mean([rho(b) for b in bases])), 4),
                     "after_new_piece": round(float(np.mean([rho(p) for p in pieces])), 4)}
    return out


@measures("melody_vae")
def _melody_vae(model, codec, cfg, quick: bool = False) -> dict:
    from ..data.essen import prepared_songs
    from ..sampling.generate import generate
    from ..sampling.reconstruct import onset_f1_counts, reconstruct

    dataset = cfg.data.get("dataset", "essen-erk")
    _, val = prepared_songs(dataset, verbose=False)
    if quick:
        val = val[:20]
    x, y, _, _ = reconstruct(model, codec, val, beam=int(cfg.sample.get("beam", 1) or 1))
    m, na, nb = onset_f1_counts(x, y, codec.pitch_table())
    ref, _ = heldout_phrases(codec, dataset)
    n = 40 if quick else 200
    temp = cfg.sample.get("temperature")
    samples = generate(model, codec, n, seed=0, temperature=temp)
    figs = {"onset_f1": round(2 * m / max(na + nb, 1), 4), "token_accuracy": round(float((x == y).mean()), 4),
            "n_phrases": int(len(x)), "mean_overlap": _overlap(samples, ref),
            "scale_consistency": _scale_consistency(samples)}
    sp = attribute_spearman(model, codec, n_bases=2 if quick else 8)
    figs["attribute_spearman_min"] = round(min(v["centre"] for v in sp.values()), 4)
    figs["attribute_spearman"] = {k: v["centre"] for k, v in sp.items()}
    figs["attribute_spearman_new_piece_min"] = round(min(v["after_new_piece"] for v in sp.values()), 4)
    figs["attribute_spearman_new_piece"] = {k: v["after_new_piece"] for k, v in sp.items()}
    return figs


@measures("coconet")
def _coconet(model, codec, cfg, quick: bool = False) -> dict:
    from ..sampling.harmonize import chorale_figures

    v = _validation(model, cfg)
    figs = chorale_figures(model, codec, int(cfg.sample.get("gibbs_steps", 64)),
                           float(cfg.sample.get("temperature", 1.0)), quick=quick,
                           parallel_penalty=float(cfg.sample.get("parallel_penalty", 0.0)))
    return {"val_loss": round(float(v["loss"]), 4), "val_accuracy": round(float(v["acc"]), 4), **figs}


@measures("gan_rhythm")
def _gan_rhythm(model, codec, cfg, quick: bool = False) -> dict:
    """The GAN with rhythm: 100 argmax samples (seed 0) of the [sample] length against the held-out songs
    (``mean_overlap``), the same for single phrases (``mean_overlap_phrase``), and how distinct the single
    phrases are from each other and from the training phrases (models/gan_rhythm.py ``distinctness``)."""
    from ..data.base import build_data
    from ..data.essen import prepared_songs
    from ..models.gan_rhythm import distinctness

    n = 20 if quick else 100
    _, ref = prepared_songs(cfg.data.get("dataset", "essen-erk"), verbose=False)
    steps = cfg.sample.get("steps")
    ids = model.sample_ids(n, torch.Generator().manual_seed(0)).numpy()
    figs = {"mean_overlap_phrase": _overlap([codec.decode(r) for r in ids], ref)}
    long = model.sample_ids(n, torch.Generator().manual_seed(0), steps=steps).numpy() if steps else ids
    figs["mean_overlap"] = _overlap([codec.decode(r) for r in long], ref) if steps else figs["mean_overlap_phrase"]
    figs.update(distinctness(ids, build_data(**cfg.data).train.phrases.numpy()))
    return figs


def conditional_audio_grid(codec, dataset: str = "nsynth-small:val", per: int = 2) -> list[tuple[str, int]]:
    """(family, pitch) requests for every family the model knows: the 3rd lowest, middle and 3rd highest
    pitch of that family's held-out notes, each ``per`` times."""
    from ..data.nsynth import load_clips

    pitches: dict[str, set] = {}
    for c in load_clips(dataset):
        pitches.setdefault(c.label, set()).add(c.pitch)
    out = []
    for fam in codec.labels:
        ps = sorted(pitches.get(fam, ()))
        if len(ps) >= 5:
            out += [(fam, p) for p in (ps[2], ps[len(ps) // 2], ps[-3]) for _ in range(per)]
    return out


@measures("harmonic_cvae")
@measures("harmonic_gan")
def _conditional_audio(model, codec, cfg, quick: bool = False) -> dict:
    """Issue 13's figures, measured with `tunesmith evaluate`'s functions against nsynth-small's held-out
    instruments: the Done-when request (brass, MIDI 60, 4 notes, seed 0) and a grid of every family x 3
    held-out pitches x 2 notes (seeded): pitch accuracy (pYIN within 50 cents), family accuracy (the
    reference classifier), and the share of families whose MFCC Frechet distance to their real held-out
    notes beats real notes of the other families."""
    import tempfile
    from pathlib import Path

    from ..evaluation.audio_family import family_accuracy, family_frechet
    from ..evaluation.audio_metrics import pitch_accuracy
    from ..sampling.generate import generate, write_outputs

    t = float(cfg.sample.get("temperature", 1.0))
    prior = cfg.sample.get("prior")  # harmonic_cvae: "family" (fitted per family) or "standard" N(0, I)
    figs: dict = {}
    with tempfile.TemporaryDirectory(prefix="tunesmith-zoo-") as d:
        a = Path(d) / "brass60"
        write_outputs(generate(model, codec, 4, seed=0, condition="brass", pitch=60, temperature=t, prior=prior), a)
        figs["brass60_pitch_accuracy"] = pitch_accuracy(a)["pitch_accuracy"]
        fam = family_accuracy(a)
        figs["brass60_family_accuracy"] = fam["family_accuracy"]
        figs["classifier_val_accuracy"] = round(fam["classifier_val_accuracy"], 4)
        grid = conditional_audio_grid(codec, per=1 if quick else 2)
        items = []
        for i, (f, p) in enumerate(grid):
            items += generate(model, codec, 1, seed=1000 + i, condition=f, pitch=p, temperature=t, prior=prior)
        g = Path(d) / "grid"
        write_outputs(items, g)
        figs["grid_notes"] = len(items)
        figs["grid_pitch_accuracy"] = round(pitch_accuracy(g)["pitch_accuracy"], 4)
        figs["grid_family_accuracy"] = round(family_accuracy(g)["family_accuracy"], 4)
        fd = family_frechet(g)
        figs["grid_fd_beats_wrong"] = round(fd["beats_wrong"], 4)
        figs["grid_fd_mean"] = round(fd["mean_generated"], 1)
        figs["grid_fd_mean_wrong_family"] = round(fd["mean_wrong"], 1)
    return figs
