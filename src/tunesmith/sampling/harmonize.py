"""Harmonising the held-out chorales' sopranos with a chorale model, and its held-out likelihood.

``python -m tunesmith.sampling.harmonize RUN OUT [--gibbs-steps N] [--temperature T] [--seed S]`` writes

* ``OUT/reference/``: the 35 held-out chorales (the chorale split, ``bach-chorales:val``) as 4-track MIDI;
* ``OUT/sopranos/``: their soprano lines, one MIDI file each (what a user would upload);
* ``OUT/harmonized/``: one harmonisation of each soprano by the model (4 tracks, soprano first);
* ``OUT/composed/``: as many unconditional pieces, each as long as the held-out chorale of the same index;
* ``OUT/summary.json``: soprano check, held-out NLL of erased notes, timings.

Then ``tunesmith evaluate OUT/harmonized --reference bach-chorales:val`` (and ``OUT/composed``) compares them
with the held-out chorales, voice-leading table included.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..data.coconet_data import chorale_split, grid_to_rows, random_masks
from ..data.midi import read_midi, write_midi
from ..errors import TunesmithError
from ..training.checkpoint import load_run


def _name(i: int, title: str) -> str:
    return f"{i:02d}_" + (re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_")[:40] or "chorale")


def write_heldout(out: Path) -> list[tuple[str, Path, Path]]:
    """The held-out chorales and their sopranos as MIDI: [(name, chorale.mid, soprano.mid)]."""
    _, val = chorale_split()
    rows = []
    for i, sc in enumerate(val):
        name = _name(i, sc.title)
        ref = write_midi(sc, (out / "reference" / name).with_suffix(".mid"), tempo=80)
        sop = sc.select(sc.track == 0)
        sop.programs = {0: 0}
        rows.append((name, ref, write_midi(sop, (out / "sopranos" / name).with_suffix(".mid"), tempo=80)))
    return rows


@torch.no_grad()
def heldout_nll(model, codec, seed: int = 0) -> dict[str, float]:
    """Frame-level NLL (nats per erased (voice, 16th) cell) on the held-out chorales, each whole chorale in
    one pass: ``random``: cells erased as in training (rate uniform in (0, 1], soprano kept in half);
    ``harmonize``: alto, tenor and bass erased, soprano given. Each erased cell is scored given the visible
    cells only (one pass; the orderless-NADE loss), pooled over all erased cells."""
    import torch.nn.functional as F

    model.eval()
    _, val = chorale_split()
    g = torch.Generator().manual_seed(seed)
    sums = {"random": [0.0, 0], "harmonize": [0.0, 0]}
    for sc in val:
        rows = torch.tensor(grid_to_rows(codec.encode(sc)))[None].to(model.device)
        T = rows.shape[-1]
        harm = torch.zeros(1, 4, T)
        harm[:, 1:] = 1
        for kind, mask in (("random", random_masks(1, 4, T, g)), ("harmonize", harm)):
            mask = mask.to(model.device)
            nll = F.cross_entropy(model.logits(rows, mask).permute(0, 3, 1, 2), rows, reduction="none")
            sums[kind][0] += float((nll * mask).sum())
            sums[kind][1] += int(mask.sum())
    return {f"nll_{k}": s / n for k, (s, n) in sums.items()} | {f"cells_{k}": n for k, (_, n) in sums.items()}


def harmonize_heldout(run, out: str | Path, gibbs_steps: int = 64, temperature: float = 1.0, seed: int = 0,
                      wav: int = 0, compose: bool = True, parallel_penalty: float = 0.0) -> dict:
    out = Path(out)
    model, codec, _, meta = load_run(run, torch.device("cpu"))
    if not hasattr(model, "harmonize"):
        raise TunesmithError(f"{run} is not a chorale harmoniser (model {type(model).__name__})")
    items = write_heldout(out)
    gen = torch.Generator().manual_seed(seed)
    (out / "harmonized").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    unchanged = 0
    for k, (name, ref, sop) in enumerate(items):
        melody = read_midi(sop)
        sc = model.harmonize(codec, melody, 1, gen, gibbs_steps, temperature, tempo=80,
                             parallel_penalty=parallel_penalty)[0]
        path = write_midi(sc, out / "harmonized" / f"{name}.mid")
        back = read_midi(path)
        unchanged += back.select(back.track == 0).notes() == melody.notes()
        if k < wav:
            from .render import render_midi

            render_midi(path, path.with_suffix(".wav"))
    t_harm = time.perf_counter() - t0
    summary = {"run": str(run), "step": meta.get("step"), "gibbs_steps": gibbs_steps, "temperature": temperature,
               "parallel_penalty": parallel_penalty,
               "seed": seed, "sopranos": len(items), "soprano_unchanged": unchanged,
               "seconds_harmonize": round(t_harm, 1)}
    if compose:
        t0 = time.perf_counter()
        _, val = chorale_split()
        (out / "composed").mkdir(parents=True, exist_ok=True)
        for (name, _, _), sc in zip(items, val):
            length = int(np.ceil(sc.length / codec.step))
            piece = model.compose(codec, 1, length, gen, gibbs_steps, temperature, tempo=80,
                                  parallel_penalty=parallel_penalty)[0]
            write_midi(piece, out / "composed" / f"{name}.mid")
        summary["seconds_compose"] = round(time.perf_counter() - t0, 1)
    summary.update(heldout_nll(model, codec, seed))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def chorale_figures(model, codec, gibbs_steps: int = 64, temperature: float = 1.0, quick: bool = False,
                    parallel_penalty: float = 0.0) -> dict:
    """The zoo card's figures (``tunesmith.zoo.measure``): harmonise the held-out sopranos and compose as many
    pieces (seed 0), evaluate both against the held-out chorales, and the held-out NLL of erased notes.
    ``quick``: the first 8 chorales only."""
    from ..evaluation import voice_leading as VL
    from ..evaluation.report import evaluate

    _, val = chorale_split()
    if quick:
        val = val[:8]
    gen = torch.Generator().manual_seed(0)
    harm, comp, same = [], [], 0
    for sc in val:
        sop = sc.select(sc.track == 0)
        h = model.harmonize(codec, sop, 1, gen, gibbs_steps, temperature, tempo=80,
                            parallel_penalty=parallel_penalty)[0]
        same += h.select(h.track == 0).notes() == sop.notes()
        harm.append(h)
    for sc in val:
        comp.append(model.compose(codec, 1, int(np.ceil(sc.length / codec.step)), gen, gibbs_steps, temperature,
                                  parallel_penalty=parallel_penalty)[0])
    mh = evaluate(harm, val, None, plots=False)
    mc = evaluate(comp, val, None, plots=False)
    vl = VL.summarize(harm)
    nll = heldout_nll(model, codec)
    return {"soprano_unchanged": f"{same}/{len(val)}", "mean_overlap": round(mh["headline"]["mean_overlap_area"], 4),
            "in_scale": round(vl["in_scale"], 4), "range_violations": round(vl["range_violations"], 4),
            "parallels_per_100": round(vl["parallels_per_100"], 3), "voice_overlaps": round(vl["voice_overlaps"], 4),
            "composed_mean_overlap": round(mc["headline"]["mean_overlap_area"], 4),
            "composed_empty": sum(len(c) == 0 for c in comp),
            "nll_erased_random": round(nll["nll_random"], 4), "nll_erased_harmonize": round(nll["nll_harmonize"], 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tunesmith.sampling.harmonize", description=__doc__.split("\n")[0])
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--gibbs-steps", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parallel-penalty", type=float, default=0.0,
                   help="rule: lower each candidate's logit by this per parallel fifth/octave it makes (0 = model only)")
    p.add_argument("--wav", type=int, default=0, help="render the first N harmonisations as WAV")
    p.add_argument("--no-compose", action="store_true")
    a = p.parse_args(argv)
    try:
        s = harmonize_heldout(a.run, a.out, a.gibbs_steps, a.temperature, a.seed, a.wav, not a.no_compose,
                              a.parallel_penalty)
    except TunesmithError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(s, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
