"""Issue 13's held-out figures for the audio models (docs/audio.md, "Conditional models and goals").

    python scripts/audio_cond_eval.py grid RUN OUT [PER]       family x 3 held-out pitches x PER notes (seeded)
    python scripts/audio_cond_eval.py bilstm RUN OUT [PER]     continue PER held-out notes per family
    python scripts/audio_cond_eval.py wavenet RUN OUT [PER]    reconstruct and re-pitch (+/-3) PER notes per family
    python scripts/audio_cond_eval.py priors RUN OUT [SEEDS]   harmonic_cvae: both priors (standard, family) on the
                                                               same weights: 6 "Done when"-like requests (brass 60,
                                                               flute 72, guitar 55, reed 60, string 60, keyboard 60;
                                                               4 notes x seeds 0..SEEDS-1) and the card's grid; a run
                                                               saved without the family prior gets it fitted first
    python scripts/audio_cond_eval.py resynth RUN OUT [N]      N real training notes (seeded) through RUN's harmonic
                                                               codec, analysed and re-synthesised: the ceiling of
                                                               the representation (no model involved)

Each writes WAVs + samples.json under OUT and prints the figures as JSON, computed with the functions
`tunesmith evaluate OUT --reference nsynth-small:val` uses (pYIN pitch accuracy, the reference family
classifier, per-family MFCC Frechet distance against real notes of the wrong family, MR-STFT vs mu-law).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tunesmith.data.nsynth import load_clips, write_sample_labels  # noqa: E402
from tunesmith.evaluation.audio_metrics import paired_mrstft, pitch_accuracy  # noqa: E402
from tunesmith.training.checkpoint import load_run  # noqa: E402


def grid(run: str, out: Path, per: int = 2) -> dict:
    from tunesmith.evaluation.audio_family import family_accuracy, family_frechet
    from tunesmith.sampling.generate import generate, write_outputs
    from tunesmith.zoo.measure import conditional_audio_grid

    model, codec, cfg, _ = load_run(run)
    t = float(cfg.sample.get("temperature", 1.0))
    prior = cfg.sample.get("prior")  # None for a model without the option (the GAN)
    requests = conditional_audio_grid(codec, per=1)  # (family, pitch) per family: 3 pitches
    items = []
    for k, (fam, p) in enumerate(requests):
        i, j = divmod(k, 3)
        items += generate(model, codec, per, seed=100 * i + j, condition=fam, pitch=p, temperature=t, prior=prior)
    write_outputs(items, out)
    pa, fa, fd = pitch_accuracy(out), family_accuracy(out), family_frechet(out)
    return {"notes": len(items), "pitch_accuracy": pa["pitch_accuracy"], "median_abs_cents": pa["median_abs_cents"],
            "family_accuracy": fa["family_accuracy"], "classifier_val_accuracy": fa["classifier_val_accuracy"],
            "fd_beats_wrong": fd["beats_wrong"], "fd_mean": fd["mean_generated"], "fd_mean_wrong": fd["mean_wrong"],
            "per_family_fd": {k: [round(v["generated"]), round(v["wrong"])] for k, v in fd["per_family"].items()}}


REQUESTS = [("brass", 60), ("flute", 72), ("guitar", 55), ("reed", 60), ("string", 60), ("keyboard", 60)]


def priors(run: str, out: Path, seeds: int = 5) -> dict:
    """Notes classified as the requested family, per request and seed (of 4), for each prior; then the card's
    grid (tunesmith/zoo/measure.py: every family x 3 held-out pitches x 2 notes, seeds 1000 + i)."""
    from tunesmith.data.base import build_data
    from tunesmith.evaluation.audio_family import family_accuracy, family_frechet
    from tunesmith.sampling.generate import generate, write_outputs
    from tunesmith.zoo.measure import conditional_audio_grid

    model, codec, cfg, _ = load_run(run)
    res: dict = {}
    if bool((model.prior_mean == 0).all() and (model.prior_std == 1).all()):  # saved before the family prior
        res["fitted"] = model.fit_prior(build_data(**cfg.data).train)
    t = float(cfg.sample.get("temperature", 1.0))
    for prior in ("standard", "family"):
        r: dict = {}
        for fam, p in REQUESTS:
            hits = []
            for s in range(seeds):
                d = out / prior / f"{fam}{p}_seed{s}"
                write_outputs(generate(model, codec, 4, seed=s, condition=fam, pitch=p, temperature=t, prior=prior), d)
                hits.append(round(family_accuracy(d)["family_accuracy"] * 4))
            r[f"{fam}{p}"] = hits
            print(prior, fam, p, hits, file=sys.stderr, flush=True)
        items = []
        for i, (f, p) in enumerate(conditional_audio_grid(codec, per=2)):
            items += generate(model, codec, 1, seed=1000 + i, condition=f, pitch=p, temperature=t, prior=prior)
        g = out / prior / "grid"
        write_outputs(items, g)
        r["grid_family_accuracy"] = round(family_accuracy(g)["family_accuracy"], 4)
        pa = pitch_accuracy(g)
        r["grid_pitch_accuracy"] = round(pa["pitch_accuracy"], 4)
        r["grid_pitch_misses"] = [{"file": Path(k).name, **v} for k, v in pa["per_file"].items() if not v["hit"]]
        fd = family_frechet(g)
        r["grid_fd_beats_wrong"] = round(fd["beats_wrong"], 4)
        r["per_family_fd"] = {k: [round(v["generated"]), round(v["wrong"])] for k, v in fd["per_family"].items()}
        res[prior] = r
    return res


def _held_out(per: int):
    rng = np.random.default_rng(0)
    by: dict[str, list] = {}
    for c in load_clips("nsynth-small:val"):
        by.setdefault(c.label, []).append(c)
    return [by[f][i] for f in sorted(by) for i in rng.choice(len(by[f]), per, replace=False)]


def bilstm(run: str, out: Path, per: int = 3) -> dict:
    """The first second each continuation makes after the primer's frames (and one FFT window)."""
    model, codec, cfg, _ = load_run(run)
    torch.manual_seed(0)
    cut = codec.context * codec.hop + codec.n_fft
    rows = []
    out.mkdir(parents=True, exist_ok=True)
    for c in _held_out(per):
        a = model.generate(codec, 1, primer=str(c.path), griffin_lim=bool(cfg.sample.get("griffin_lim", False)))[0]
        sf.write(out / f"{c.name}.wav", a.samples[cut:cut + codec.sample_rate], codec.sample_rate)
        rows.append({"file": f"{c.name}.wav", "pitch": c.pitch, "family": c.label})
    write_sample_labels(out, rows)
    r = pitch_accuracy(out)
    return {"notes": len(rows), "pitch_accuracy": r["pitch_accuracy"], "median_abs_cents": r["median_abs_cents"],
            **_movement(model, codec, _held_out(per), cut)}


@torch.no_grad()
def _movement(model, codec, sel, cut: int) -> dict:
    """Does a continuation only repeat the last primer frame? Over the evaluated second, the mean |frame -
    last primer frame| and the change of the mean level (first to last frame) of the scaled log-mel frames,
    for the model's continuations and for the real notes."""
    f0, f1 = cut // codec.hop, (cut + codec.sample_rate) // codec.hop
    g_mv, r_mv, g_lv, r_lv = [], [], [], []
    for c in sel:
        spec = codec.audio_to_spec(codec.load(str(c.path)))
        seq = spec.permute(1, 0, 2).reshape(spec.shape[1], -1)[None]
        s = seq[:, : codec.context]
        while s.shape[1] < f1:
            s = torch.cat([s, model.predict(s[:, -codec.context:]).clamp(-1, 1)[:, None]], 1)
        last = seq[0, codec.context - 1]
        g, r = s[0, f0:f1], seq[0, f0:f1]
        g_mv.append(float((g - last).abs().mean()))
        r_mv.append(float((r - last).abs().mean()))
        g_lv.append(float(g[-1].mean() - g[0].mean()))
        r_lv.append(float(r[-1].mean() - r[0].mean()))
    return {"move_from_primer": round(float(np.mean(g_mv)), 3), "move_from_primer_real": round(float(np.mean(r_mv)), 3),
            "level_change": round(float(np.mean(g_lv)), 3), "level_change_real": round(float(np.mean(r_lv)), 3)}


def wavenet(run: str, out: Path, per: int = 3) -> dict:
    model, codec, _, _ = load_run(run)
    sel = _held_out(per)
    rows = {"recon": [], "repitch": [], "repitch_down": []}
    for i, c in enumerate(sel):
        for kind, pitch in (("recon", None), ("repitch", c.pitch + 3), ("repitch_down", c.pitch - 3)):
            g = torch.Generator().manual_seed(i)
            a = model.generate(codec, 1, generator=g, primer=str(c.path), pitch=pitch)[0]
            (out / kind).mkdir(parents=True, exist_ok=True)
            sf.write(out / kind / f"{c.name}.wav", a.samples, codec.sample_rate)
            rows[kind].append({"file": f"{c.name}.wav", "pitch": pitch or c.pitch, "family": c.label})
    for kind, r in rows.items():
        write_sample_labels(out / kind, r)
    pr, ps, pd = (pitch_accuracy(out / k) for k in ("recon", "repitch", "repitch_down"))
    m = paired_mrstft(out / "recon", [c.path for c in sel])
    real = pitch_accuracy_of(sel, out / "real")
    return {"notes": len(sel), "recon_pitch_accuracy": pr["pitch_accuracy"], "recon_cents": pr["median_abs_cents"],
            "repitch_up3_pitch_accuracy": ps["pitch_accuracy"], "repitch_up3_cents": ps["median_abs_cents"],
            "repitch_down3_pitch_accuracy": pd["pitch_accuracy"], "repitch_down3_cents": pd["median_abs_cents"],
            "real_notes_pitch_accuracy": real["pitch_accuracy"],
            "mrstft": m["mrstft"], "mrstft_mulaw8": m["mrstft_mulaw8"]}


def resynth(run: str, out: Path, n: int = 66) -> dict:
    from tunesmith.data.nsynth import load_clips
    from tunesmith.evaluation.audio_family import family_accuracy

    _, codec, _, _ = load_run(run)
    clips = sorted(load_clips("nsynth-small:train"), key=lambda c: c.name)
    sel = [clips[i] for i in np.random.default_rng(0).choice(len(clips), n, replace=False)]
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, c in enumerate(sel):
        x, _ = sf.read(c.path, dtype="float32")
        x = x / max(1e-8, float(np.abs(x).max()))
        y = codec.synthesize(codec.analyze(x, c.pitch), c.pitch, seed=i)
        sf.write(out / f"r_{i:03d}.wav", y / max(1e-6, float(np.abs(y).max())) * 0.9, codec.sample_rate)
        rows.append({"file": f"r_{i:03d}.wav", "pitch": c.pitch, "family": c.label})
    write_sample_labels(out, rows)
    fa, pa = family_accuracy(out), pitch_accuracy(out)
    return {"notes": n, "floor_db": codec.floor_db, "family_accuracy": fa["family_accuracy"],
            "pitch_accuracy": pa["pitch_accuracy"], "predicted": fa["predicted"]}


def pitch_accuracy_of(sel, out: Path) -> dict:
    """The same pYIN check on the original held-out notes (the ceiling a reconstruction can reach)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in sel:
        x, sr = sf.read(c.path, dtype="float32")
        sf.write(out / f"{c.name}.wav", x, sr)
        rows.append({"file": f"{c.name}.wav", "pitch": c.pitch, "family": c.label})
    write_sample_labels(out, rows)
    return pitch_accuracy(out)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("grid", "bilstm", "wavenet", "resynth", "priors"):
        raise SystemExit(__doc__)
    fn = {"grid": grid, "bilstm": bilstm, "wavenet": wavenet, "resynth": resynth, "priors": priors}[sys.argv[1]]
    print(json.dumps(fn(sys.argv[2], Path(sys.argv[3]), *map(int, sys.argv[4:5]))))
