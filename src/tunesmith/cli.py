"""``tunesmith`` command line: a thin layer over the library.

Exit codes: 0 success, 2 usage error (argparse), 1 bad input with a one-line message.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from .errors import TunesmithError


def cmd_datasets(a) -> None:
    from .data.corpora import CORPORA, cache_dir

    if a.action == "build":
        from .data import builders

        if not a.name:
            from .errors import UsageError

            raise UsageError(f"datasets build needs a NAME: tunesmith datasets build NAME "
                             f"(buildable: {', '.join(builders.BUILDABLE)})")
        builders.build(a.name, refresh=a.refresh)
        return
    import pickle

    print(f"{'name':<16} {'pieces':>7}  description")
    for name, c in CORPORA.items():
        cached = sorted(cache_dir().glob(f"corpus-{name}-v*.pkl"))
        size = "?"
        if cached:
            try:
                with open(cached[-1], "rb") as f:
                    size = str(len(pickle.load(f)))
            except Exception:
                pass
        print(f"{name:<16} {size:>7}  {c.description}" + ("" if cached else " (parsed on first use)"))
    try:
        from .data import builders

        for name, desc in builders.BUILDABLE.items():
            print(f"{name:<16} {'built' if builders.is_built(name) else '-':>7}  {desc} "
                  f"(tunesmith datasets build {name})")
    except ImportError:
        pass
    print("or any folder of .mid/.midi/.krn/.abc/.xml/.musicxml/.mxl files (data.dataset = \"path/to/folder\")")


def cmd_train(a) -> None:
    from .training.trainer import train

    train(a.config, a.out, device=a.device, epochs=a.epochs, max_steps=a.max_steps, resume=a.resume,
          progress=not a.quiet)


def cmd_sample(a) -> None:
    if a.help_model:
        from .models.controls import describe
        from .training.checkpoint import load_run

        model, codec, cfg, meta = load_run(a.run, "cpu")
        print(f"{a.run}: {cfg.model['name']} ({type(model).__name__}); controls for `tunesmith sample`:")
        print(describe(model, dict(cfg.sample), codec, flags=set(vars(a))))
        return
    if a.reconstruct:
        from .sampling.reconstruct import reconstruct_run

        if not a.out:
            raise TunesmithError("--reconstruct needs --out FOLDER for the MIDI and reconstruction.json")
        from .sampling.checks import check_options

        check_options({"tempo": a.tempo})  # --tempo 0 used to become 120 silently
        res = reconstruct_run(a.run, a.reconstruct, a.out, device=a.device,
                              tempo=a.tempo if a.tempo is not None else 120.0)
        print(f"onset_f1 {res['onset_f1']:.4f} token_accuracy {res['token_accuracy']:.4f} n_phrases {res['n_phrases']}")
        return
    from .sampling.generate import sample_run

    opts = {"primer": a.primer, "temperature": a.temperature, "top_k": a.top_k, "steps": a.steps,
            "tempo": a.tempo, "condition": a.condition, "guidance": a.guidance, "pitch": a.pitch,
            "interpolate": tuple(a.interpolate) if a.interpolate else None,
            "denoise": True if a.denoise else None, "griffin_lim": True if a.griffin_lim else None,
            "noise": a.noise, "melody": a.melody, "set": a.set}
    paths = sample_run(a.run, a.out, num=a.num, wav=a.wav, seed=a.seed, device=a.device, formats=a.format, **opts)
    for p in paths:
        print(p)


def cmd_render(a) -> None:
    from .sampling.render import render_midi

    if not 8000 <= a.sample_rate <= 192000:
        raise TunesmithError(f"--sample-rate must be between 8000 and 192000 Hz, got {a.sample_rate}")
    print(render_midi(a.midi, a.wav, sample_rate=a.sample_rate, soundfont=a.soundfont))


def cmd_evaluate(a) -> None:
    from .evaluation.report import evaluate_command

    evaluate_command(a.generated, a.reference, a.out, max_pieces=a.max_pieces)


def cmd_serve(a) -> None:
    from .serve.app import serve

    runs = a.runs
    if not runs:  # no run given: every model shipped in the zoo
        from . import zoo

        runs = [zoo.PREFIX + n for n in zoo.page_order(zoo.names())]   # the page opens on the first
        if not runs:
            raise TunesmithError("no run given and no zoo model installed: tunesmith serve RUN [RUN...]")
    serve(runs, host=a.host, port=a.port)


def cmd_score(a) -> None:
    from .evaluation.score import score_command

    score_command(a.run, a.data, a.out, device=a.device, quiet=a.quiet)


def cmd_zoo(a) -> None:
    from . import zoo

    have = zoo.names()
    if not have:
        print("no models shipped yet (scripts/train_zoo.sh NAME makes one)")
        return
    print(f"{'name':<24} {'family':<16} description")
    for name in have:
        c = zoo.card(name)
        print(f"{'zoo:' + name:<24} {c.get('family', ''):<16} {c.get('description', '')}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tunesmith", description="Train, sample, evaluate and serve deep "
                                "generative models of music.")
    p.add_argument("--version", action="version", version=f"tunesmith {__import__('tunesmith').__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("datasets", help="list built-in corpora, or build one (tunesmith datasets build NAME)")
    s.add_argument("action", nargs="?", choices=["list", "build"], default="list")
    s.add_argument("name", nargs="?", help="dataset to build (with 'build')")
    s.add_argument("--refresh", action="store_true", help="rebuild even if cached")
    s.set_defaults(fn=cmd_datasets)

    s = sub.add_parser("train", help="train a config into a run directory")
    s.add_argument("config", help="TOML config, e.g. configs/essen_lstm.toml")
    s.add_argument("--out", default=None, help="run directory (default runs/<config name>)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda (auto picks CUDA when present)")
    s.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    s.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    s.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("sample", help="generate MIDI (and WAV) from a trained run")
    s.add_argument("run", help="run directory written by `tunesmith train`")
    s.add_argument("--help-model", action="store_true", help="list the controls this run's model takes and exit")
    s.add_argument("--set", action="append", default=None, metavar="NAME=VALUE",
                   help="any control the model declares (--help-model lists them), e.g. --set temperature=0.9; "
                        "repeatable")
    s.add_argument("--primer", default=None, help='primer melody in the encoding\'s text, e.g. "60 _ 62 _"')
    s.add_argument("--temperature", type=float, default=None, help="sampling temperature (> 0)")
    s.add_argument("--top-k", type=int, default=None, help="sample among the k most likely symbols")
    s.add_argument("--num", type=int, default=None, help="how many pieces (default 4)")
    s.add_argument("--steps", type=int, default=None, help="maximum generated steps")
    s.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples")
    s.add_argument("--tempo", type=float, default=None, help="tempo of the written MIDI, quarter notes/minute")
    s.add_argument("--condition", default=None,
                   help="condition labels of a conditional model, e.g. metre=3/4,mode=minor (--help-model lists them)")
    s.add_argument("--guidance", type=float, default=None,
                   help="conditioned melody models: classifier-free guidance scale (1 = plain conditional)")
    s.add_argument("--pitch", type=int, default=None, metavar="MIDI",
                   help="pitch-conditioned audio models: the MIDI pitch to play (e.g. 60)")
    s.add_argument("--melody", default=None, metavar="FILE.mid",
                   help="chorale harmoniser: harmonise this melody as the soprano (kept exactly) in four voices")
    s.add_argument("--interpolate", nargs=2, metavar=("A.mid", "B.mid"), default=None,
                   help="latent interpolation between two pieces (autoencoders)")
    s.add_argument("--reconstruct", default=None, metavar="FOLDER_OR_DATASET",
                   help="melody VAE: encode and decode each piece phrase by phrase (e.g. essen-erk:val); "
                        "writes MIDI and OUT/reconstruction.json (onset F1, token accuracy)")
    s.add_argument("--denoise", action="store_true", help="audio models: spectral-gating noise reduction")
    s.add_argument("--griffin-lim", action="store_true", help="spectrogram models: rebuild phase with Griffin-Lim")
    s.add_argument("--noise", type=float, default=None, help="WaveNet autoencoder: noise added to its codes")
    s.add_argument("--out", default=None, help="output folder (default RUN/samples)")
    s.add_argument("--wav", action="store_true", help="also render WAV with FluidSynth")
    s.add_argument("--format", default="mid", help="mid | abc | musicxml, or a comma list (e.g. mid,abc): "
                   "MIDI and/or sheet music with key, metre, bars and ties (default mid)")
    s.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    s.set_defaults(fn=cmd_sample)

    s = sub.add_parser("render", help="render a MIDI file to WAV (FluidSynth + General MIDI soundfont)")
    s.add_argument("midi")
    s.add_argument("wav")
    s.add_argument("--sample-rate", type=int, default=44100)
    s.add_argument("--soundfont", default=None, help="a .sf2 file (default: Debian's TimGM6mb or FluidR3_GM)")
    s.set_defaults(fn=cmd_render)

    s = sub.add_parser("evaluate", help="compare generated music with a reference set; writes a report")
    s.add_argument("generated", help="folder of MIDI/WAV files, a run directory, or a dataset name")
    s.add_argument("--reference", required=True, help="folder, run directory or dataset name (e.g. essen-erk)")
    s.add_argument("--out", default="report", help="report folder (default report/)")
    s.add_argument("--max-pieces", type=int, default=None, help="use at most this many pieces per set")
    s.set_defaults(fn=cmd_evaluate)

    s = sub.add_parser("score", help="held-out likelihood of a melody model: nats/step, bits/note, accuracy")
    s.add_argument("run", help="run directory, zoo:NAME, or ngram:N (the n-gram baseline, fitted on the training songs)")
    s.add_argument("data", help="DATASET:val | DATASET:train | DATASET | a folder of MIDI/kern/ABC/MusicXML files")
    s.add_argument("--out", default=None, help="write the per-piece and mean figures as JSON (a .json file or a folder)")
    s.add_argument("--quiet", action="store_true", help="only the summary lines, no per-piece table")
    s.add_argument("--device", default="cpu", help="cpu | cuda")
    s.set_defaults(fn=cmd_score)

    s = sub.add_parser("zoo", help="list the trained models shipped with tunesmith (use them as zoo:NAME)")
    s.set_defaults(fn=cmd_zoo)

    s = sub.add_parser("serve", help="the web app: play with trained models in a browser")
    s.add_argument("runs", nargs="*", help="run directories or zoo:NAME to load (default: every zoo model)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(fn=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if getattr(a, "command", None) == "train" and a.out is None:
        from pathlib import Path

        a.out = str(Path("runs") / Path(a.config).stem)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *args, **kw: f"warning: {msg}\n"
    try:
        a.fn(a)
    except TunesmithError as e:
        print(f"error: {e}", file=sys.stderr)
        return int(getattr(e, "exit_code", 1))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: one line, traceback on request
        if os.environ.get("TUNESMITH_DEBUG"):
            raise
        print(f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
              "(set TUNESMITH_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
