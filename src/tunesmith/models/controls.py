"""What a model lets a user control when sampling, declared in one place.

``controls(model_or_class)`` lists a family's ``Control``s: one per keyword of its ``generate`` (the
signature is the declaration of *which* controls exist), with the type, default and range from the
signature and the shared table below, and the meaning from ``CONTROL_MEANINGS`` or the family's own
``CONTROL_NOTES`` (a class attribute ``{name: "meaning"}`` for a control that means something else there, e.g.
a VAE's ``temperature`` scales the latent instead of the softmax). ``tunesmith sample RUN --help-model``
prints them.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

CONTROL_MEANINGS: dict[str, tuple[str, str]] = {   # name -> (range, meaning)
    "primer": ("symbols", 'opening melody in the encoding\'s text, e.g. "60 _ 62 _" (pitch, _ hold, r rest)'),
    "temperature": ("> 0", "softmax temperature: < 1 safer, > 1 more adventurous"),
    "top_k": (">= 1", "sample among the k most likely symbols only"),
    "steps": (">= 1", "how many time steps (16th notes) to generate"),
    "tempo": ("(0, 1000]", "tempo of the written MIDI in quarter notes per minute"),
    "condition": ("label", "condition labels of a conditional model, e.g. metre=3/4,mode=minor (a kind left out "
                           "is free)"),
    "guidance": (">= 0", "classifier-free guidance: 1 = plain conditional, > 1 follows the condition more "
                         "strictly, 0 ignores it"),
    "sliders": ("[-3, 3] each", "latent slider positions, comma-separated (standard deviations along each "
                                "direction; the first ones, the rest at 0), e.g. 1.5,0,-2"),
    "attributes": ("NAME=VALUE,...", "attribute slider positions in standard deviations, e.g. pitch_range=2,rests=-1 "
                                     "(note_density, pitch_height, pitch_range, stepwise_motion, rests)"),
    "beam": (">= 1", "beam search over that many hypotheses (1: decode step by step)"),
    "interpolate": ("2 files", "two MIDI files: decode the latent path between them"),
    "melody": ("MIDI file", "a melody to harmonise as the soprano (kept exactly)"),
    "denoise": ("on/off", "spectral-gating noise reduction of the audio"),
    "griffin_lim": ("on/off", "rebuild the phase with Griffin-Lim"),
    "noise": (">= 0", "noise added to the autoencoder's codes"),
    "pitch": ("MIDI 0-127", "the pitch to play"),
}
SKIP = {"self", "codec", "n", "generator"}


@dataclass(frozen=True)
class Control:
    name: str
    type: str
    default: Any
    range: str
    meaning: str
    choices: tuple = ()   # the values a choice control takes (a conditioned model's labels), else empty

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _type_name(p: inspect.Parameter) -> str:
    ann = p.annotation
    if ann is not inspect.Parameter.empty:
        return str(ann if isinstance(ann, str) else getattr(ann, "__name__", ann)).replace("typing.", "")
    d = p.default
    return type(d).__name__ if d not in (None, inspect.Parameter.empty) else "any"


def condition_choices(codec) -> tuple[str, ...]:
    """A conditioned model's labels as ``--condition`` values: a time-step model's ``<metre=3/4>`` tokens
    without their brackets (``metre=3/4``), an audio model's family names (``brass``) as they are."""
    return tuple(str(s)[1:-1] if str(s).startswith("<") and str(s).endswith(">") else str(s)
                 for s in (getattr(codec, "labels", None) or []))


def controls(model, codec=None) -> list[Control]:
    """The model's controls; with the run's ``codec``, ``condition`` lists the labels it was trained with."""
    cls = model if isinstance(model, type) else type(model)
    labels = condition_choices(codec) if codec is not None else ()
    notes = getattr(cls, "CONTROL_NOTES", {}) or {}
    out = []
    for name, p in inspect.signature(cls.generate).parameters.items():
        if name in SKIP or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        rng, meaning = CONTROL_MEANINGS.get(name, ("", ""))
        default = None if p.default is inspect.Parameter.empty else p.default
        if name == "condition" and labels:  # a choice: one value per kind, joined by commas
            out.append(Control(name, "choice", default, ", ".join(labels), notes.get(name, meaning), labels))
            continue
        named = (getattr(cls, "CONTROL_CHOICES", None) or {}).get(name)  # a family's named options, e.g. a prior
        out.append(Control(name, _type_name(p), default, " | ".join(named) if named else rng, notes.get(name, meaning)))
    return out


def describe(model, defaults: dict | None = None, codec=None, flags=None) -> str:
    """A table of the model's controls (defaults from the run's [sample] section win). ``flags``: the names the
    command line has a flag for; any other control is shown as ``--set NAME=``, the way to give it."""
    defaults = defaults or {}
    rows = [(c.flag if flags is None or c.name in flags else f"--set {c.name}=", c.type,
             repr(defaults.get(c.name, c.default)), c.range, c.meaning) for c in controls(model, codec)]
    if not rows:
        return f"{type(model).__name__} takes no sampling controls besides --num, --seed and --out"
    w = [max(len(r[i]) for r in rows + [("flag", "type", "default", "range", "meaning")]) for i in range(4)]
    head = ("flag", "type", "default", "range", "meaning")
    lines = ["  ".join(h.ljust(w[i]) if i < 4 else h for i, h in enumerate(head))]
    lines += ["  ".join(v.ljust(w[i]) if i < 4 else v for i, v in enumerate(r)) for r in rows]
    return "\n".join(lines)


def parse_control_values(model, pairs, codec=None) -> dict[str, Any]:
    """``--set NAME=VALUE`` pairs as keyword options of ``model.generate``, typed by the declaration: a family
    whose control has no flag of its own is still reachable from the CLI, with no change to cli.py. An unknown
    name or a value of the wrong type is a TunesmithError that lists what the model takes."""
    from ..errors import TunesmithError

    declared = {c.name: c for c in controls(model, codec)}
    out: dict[str, Any] = {}
    for pair in pairs or ():
        name, sep, raw = str(pair).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise TunesmithError(f"--set takes NAME=VALUE (e.g. --set temperature=0.9), got {pair!r}")
        c = declared.get(name)
        if c is None:
            names = ", ".join(sorted(declared)) or "none"
            raise TunesmithError(f"--set {name}: {type(model).__name__} has no control {name!r} "
                                 f"(it takes: {names}; --help-model describes them)")
        t = c.type.replace(" ", "")
        try:
            if t.startswith("bool"):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(raw)
                value: Any = raw.lower() in ("true", "1", "yes", "on")
            elif t.startswith("int"):
                value = int(raw)
            elif t.startswith("float"):
                value = float(raw)
            elif t.startswith("list[float]"):   # 1.5,0,-2
                value = [float(x) for x in raw.split(",")]
            elif t.startswith("dict[str,float]"):   # pitch_range=2,rests=-1
                value = {}
                for item in raw.split(","):
                    k, eq, v = item.partition("=")
                    if not eq or not k.strip():
                        raise ValueError(item)
                    value[k.strip()] = float(v)
            else:
                value = raw
        except ValueError:
            example = {"list[float]": " (numbers separated by commas, e.g. 1.5,0,-2)",
                       "dict[str,float]": " (NAME=NUMBER pairs separated by commas, e.g. pitch_range=2,rests=-1)"}
            hint = next((v for k, v in example.items() if t.startswith(k)), "")
            raise TunesmithError(f"--set {name}: expected a value of type {c.type}{hint}, got {raw!r}") from None
        out[name] = value
    return out
