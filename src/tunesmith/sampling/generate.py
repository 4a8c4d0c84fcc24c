"""``tunesmith sample``: load a run directory, generate, write ``sample_000.mid`` (+ ``.wav``)."""
from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import torch

from ..data.midi import write_midi
from ..data.notes import Score
from ..errors import TunesmithError
from ..models.base import Audio
from ..training.checkpoint import load_run
from ..zoo import is_zoo
from .checks import check_options, check_out_folder
from ..training.trainer import resolve_device
from .render import render_midi, write_wav
from .spectrogram_png import save_spectrogram_png


def generate(model, codec, n: int, seed: int | None = None, **options) -> list[Any]:
    """Call the family's ``generate`` with the options it takes; reject the others with one line."""
    check_options({**options, "num": n, "seed": seed})  # shared ranges: finite temperature > 0, top_k/steps/num >= 1, tempo
    params = inspect.signature(model.generate).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    given = {k: v for k, v in options.items() if v is not None}
    unknown = [k for k in given if not takes_all and k not in params]
    if unknown:
        ok = [k for k in params if k not in ("codec", "n", "generator")]
        raise TunesmithError(f"{type(model).__name__} does not take --{unknown[0].replace('_', '-')}; "
                             f"it takes: {', '.join('--' + k.replace('_', '-') for k in ok)}")
    gen = torch.Generator(device=model.device)
    gen.manual_seed(int(seed) if seed is not None else int(torch.seed() % 2**31))
    if seed is not None:
        torch.manual_seed(int(seed))
    return model.generate(codec, n, generator=gen, **given)


def write_outputs(items: list, out_dir: Path, wav: bool = False, prefix: str = "sample",
                  formats="mid", metre=None) -> list[Path]:
    """Write each Score as ``formats`` (``"mid,abc,musicxml"``, a comma list or a tuple; sheet music keeps
    the score's own metre unless ``metre`` is given) and optionally WAV; each Audio as WAV + spectrogram PNG."""
    from .notation import FORMATS, parse_formats, write_notation

    formats = parse_formats(formats)
    if any(isinstance(x, Audio) for x in items) and formats != ("mid",):
        raise TunesmithError("this model makes audio: --format abc/musicxml needs a model that makes notes")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, item in enumerate(items):
        base = out_dir / f"{prefix}_{i:03d}"
        if isinstance(item, Score):
            for fmt in formats:
                paths.append(write_midi(item, base.with_suffix(".mid")) if fmt == "mid" else
                             write_notation(item, base.with_suffix(FORMATS[fmt]), fmt, metre=metre))
            if wav and "mid" in formats:
                paths.append(render_midi(base.with_suffix(".mid"), base.with_suffix(".wav")))
            elif wav:  # WAV without a MIDI file: render from a temporary one
                import tempfile

                with tempfile.TemporaryDirectory(prefix="tunesmith-") as d:
                    paths.append(render_midi(write_midi(item, Path(d) / "piece.mid"), base.with_suffix(".wav")))
        elif isinstance(item, Audio):
            paths.append(write_wav(item.samples, item.sample_rate, base.with_suffix(".wav")))
            paths.append(save_spectrogram_png(item, base.with_suffix(".png")))
        else:
            raise TypeError(f"cannot write {type(item).__name__}")
    asked = [(i, x) for i, x in enumerate(items) if isinstance(x, Audio) and x.pitch >= 0]
    if asked:  # a pitch-conditioned model: say what each WAV was asked to be (read by tunesmith evaluate)
        from ..data.nsynth import NSYNTH_FAMILIES, write_sample_labels

        paths.append(write_sample_labels(out_dir, [{"file": f"{prefix}_{i:03d}.wav", "pitch": x.pitch,
                                                    "family": x.label if x.label in NSYNTH_FAMILIES else None}
                                                   for i, x in asked]))
    return paths


def sample_run(run_dir: str | Path, out_dir: str | Path | None = None, num: int = 4, wav: bool = False,
               seed: int | None = None, device: str = "cpu", formats="mid", **options) -> list[Path]:
    """Generate ``num`` pieces from a trained run. Unset options fall back to the config's [sample].
    ``formats``: ``"mid"``, ``"abc"``, ``"musicxml"`` or a comma list of them."""
    from .notation import condition_metre, infer_pickup, parse_formats

    formats = parse_formats(formats)  # a bad --format fails before the model is loaded
    check_options({**options, "num": num, "seed": seed})
    if out_dir:
        check_out_folder(out_dir)
    model, codec, cfg, _ = load_run(run_dir, resolve_device(device))
    if options.get("set"):  # --set NAME=VALUE: any declared control, typed by the model's declaration
        from ..models.controls import parse_control_values

        extra = parse_control_values(model, options.pop("set"), codec)
        both = sorted(k for k in extra if options.get(k) is not None)
        if both:
            raise TunesmithError(f"--{both[0].replace('_', '-')} is given twice (as a flag and with --set); keep one")
        options = {**options, **extra}
        check_options({**options, "num": num, "seed": seed})
    options.pop("set", None)
    defaults = dict(cfg.sample)
    num = num if num is not None else defaults.pop("num", 4)
    defaults.pop("num", None)
    opts = {**defaults, **{k: v for k, v in options.items() if v is not None}}
    if out_dir:
        out = Path(out_dir)
    elif is_zoo(run_dir):  # never write into the installed package
        out = check_out_folder(Path("samples") / str(run_dir)[len("zoo:"):], "--out", "the samples folder")
    else:
        out = check_out_folder(Path(run_dir) / "samples", "--out", "the run's samples folder")  # before generating
    items = generate(model, codec, num, seed=seed, **opts)
    metre = condition_metre(opts.get("condition"))  # --condition metre=3/4: the files carry it
    melody = "primer" in inspect.signature(model.generate).parameters  # sampled melodies carry no bar lines
    for item in items:
        if isinstance(item, Score):
            if metre is not None:
                item.time_signature = metre
            if melody:
                item.pickup = infer_pickup(item)  # where the bar lines of the sheet music go
    paths = write_outputs(items, out, wav=wav, formats=formats)
    print(f"wrote {len(paths)} files to {out}", file=sys.stderr)
    return paths
