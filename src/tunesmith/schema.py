"""Typed config sections, checked when a config is loaded -- before any data is read or any model built.

* ``[train]`` is the ``TrainConfig`` dataclass: each key has a type and a range (``TRAIN_RULES``).
* ``[data]`` and ``[model]`` are typed by the signatures of what they configure: the encoding's builder
  function and the model class's ``__init__`` (annotations, else the type of the default). A key that the
  builder/class does not take, or a value of the wrong type, fails at load time with the valid keys.
* ``[sample]`` is typed by the model's ``generate`` signature (plus ``num``): an unknown ``[sample]`` key
  used to train fine and leave a run that could never be sampled.
* Sizes that cannot fit are refused up front with an estimate of the memory they need.
* Old key names (``KEY_ALIASES``) are renamed before any check: silently for saved runs, with a warning
  for config files.

Every message reads ``<file>: [section] key must be ..., got <value>``.
"""
from __future__ import annotations

import inspect
import math
import os
from typing import Any, Callable

from .errors import TunesmithError

# ---------------------------------------------------------------------------------- old key names
# One name per concept across families. Old names keep working: a saved run (checkpoint/config.json, the
# shipped zoo models) loads with them silently; a config TOML that uses one loads with a one-line warning
# ("warning: FILE: [model] kl_anneal_steps is now kl_warmup_steps; rename it"). Both names at once is an error.
KEY_ALIASES: dict[str, dict[str, str]] = {   # section -> {old name: name}
    "data": {"max_songs": "max_pieces"},
    "model": {"n_vocab": "vocab_size", "noise_dim": "latent_dim", "latent": "latent_dim",
              "kl_anneal_steps": "kl_warmup_steps", "kl_warmup": "kl_warmup_steps"},
}


def apply_aliases(d: dict, source: str, warn: bool = True) -> dict:
    """Rename old keys of the raw config dict ``d`` (sections as tables) to their current names, in place.

    ``warn``: emit one ``FutureWarning`` per old key (config files a user edits); saved runs pass False."""
    import warnings

    for section, table in KEY_ALIASES.items():
        sec = d.get(section)
        if not isinstance(sec, dict):
            continue
        for old, new in table.items():
            if old not in sec:
                continue
            if new in sec:
                raise TunesmithError(f"{source}: [{section}] has both {old} and {new} (the same setting; "
                                     f"{old} is the old name): keep only {new}")
            sec[new] = sec.pop(old)
            if warn:
                warnings.warn(f"{source}: [{section}] {old} is now {new}; rename it (the old name still works)",
                              FutureWarning, stacklevel=3)
    return d


# (kind, lower bound, lower inclusive, upper bound) -- kind: "int", "num", "bool", "str", "pair"
TRAIN_RULES: dict[str, tuple] = {
    "epochs": ("int", 0, True, None), "max_steps": ("int?", 0, True, None), "batch_size": ("int", 1, True, 1 << 20),
    "lr": ("num", 0, False, None), "optimizer": ("choice", ("adam", "adamw", "rmsprop", "sgd")),
    "betas": ("pair", 0, True, 1.0), "weight_decay": ("num", 0, True, None), "grad_clip": ("num?", 0, False, None),
    "seed": ("int", 0, True, None), "log_every": ("int", 1, True, None), "checkpoint_every": ("int", 1, True, None),
    "val_every": ("int?", 1, True, None), "lr_decay": ("num?", 0, False, 1.0), "lr_decay_every": ("int", 1, True, None),
    "plateau_patience": ("int?", 0, True, None), "plateau_factor": ("num", 0, False, 1.0),
    "early_stopping": ("int?", 1, True, None), "precision": ("choice", ("fp32", "bf16")), "compile": ("bool",),
    "deterministic": ("bool",), "num_threads": ("int?", 1, True, 1024), "n_critic": ("int", 1, True, 1000),
    "lr_critic": ("num?", 0, False, None), "optimizer_critic": ("choice?", ("adam", "adamw", "rmsprop", "sgd")),
    "betas_critic": ("pair?", 0, True, 1.0), "clip_critic": ("num?", 0, False, None),
}


def _show(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def check_train(tr: dict, source: str) -> None:
    for k, v in tr.items():
        rule = TRAIN_RULES.get(k)
        if rule is None:
            continue
        kind = rule[0]
        optional = kind.endswith("?")
        kind = kind.rstrip("?")
        if v is None and optional:
            continue
        where = f"{source}: [train] {k}"
        if kind == "bool":
            if not isinstance(v, bool):
                raise TunesmithError(f"{where} must be true or false, got {_show(v)}")
            continue
        if kind == "choice":
            if v not in rule[1]:
                raise TunesmithError(f"{where} must be one of {', '.join(rule[1])}, got {_show(v)}")
            continue
        if kind == "pair":
            if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_num(x) and 0 <= x < 1 for x in v)):
                raise TunesmithError(f"{where} must be two numbers in [0, 1), got {_show(v)}")
            continue
        lo, lo_incl, hi = rule[1], rule[2], rule[3]
        ok_type = _is_int(v) if kind == "int" else _is_num(v)
        noun = "an integer" if kind == "int" else "a number"
        if lo == 0 and not lo_incl:
            noun = "a positive integer" if kind == "int" else "a positive number"
        elif lo is not None and lo_incl and lo >= 0:
            noun += f" >= {lo}"
        if hi is not None:
            noun += f" <= {hi:g}" if not (lo == 0 and not lo_incl) else f" (at most {hi:g})"
        if not ok_type or (lo is not None and (v < lo if lo_incl else v <= lo)) or (hi is not None and v > hi):
            raise TunesmithError(f"{where} must be {noun}, got {_show(v)}")


# ---------------------------------------------------------------------------------- signature-typed sections
def _allowed(param: inspect.Parameter) -> set[str] | None:
    """Type names a parameter accepts, from its annotation (a string under ``from __future__ import
    annotations``) or its default; None when unknown (then anything goes)."""
    ann = param.annotation
    names: set[str] = set()
    if ann is not inspect.Parameter.empty:
        text = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
        text = str(text).replace("typing.", "").replace("Optional[", "None|").replace("]", "")
        for tok in text.replace(",", "|").replace("[", "|").split("|"):
            tok = tok.strip()
            if tok in ("int", "float", "bool", "str", "None", "list", "tuple", "dict"):
                names.add(tok)
            elif tok:
                return None                       # a type we do not check (Path, a class, Any...)
        return names or None
    d = param.default
    if d is inspect.Parameter.empty or d is None:
        return None
    return {type(d).__name__} if type(d).__name__ in ("int", "float", "bool", "str", "list", "tuple", "dict") else None


def _type_ok(v, allowed: set[str]) -> bool:
    if v is None:
        return "None" in allowed
    if isinstance(v, bool):
        return "bool" in allowed
    if isinstance(v, int):
        return "int" in allowed or "float" in allowed
    if isinstance(v, float):
        return "float" in allowed
    if isinstance(v, str):
        return "str" in allowed
    if isinstance(v, (list, tuple)):
        return "list" in allowed or "tuple" in allowed
    if isinstance(v, dict):
        return "dict" in allowed
    return False


_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
          "list": "a list", "tuple": "a list", "dict": "a table", "None": "absent"}


def check_against(fn: Callable, values: dict, section: str, source: str, skip: tuple = (),
                  extra: dict | None = None) -> None:
    """Keys of ``values`` must be parameters of ``fn`` (or of ``extra``), of the right type."""
    params = {k: p for k, p in inspect.signature(fn).parameters.items()
              if k not in ("self",) + skip and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    takes_all = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    extra = extra or {}
    for k, v in values.items():
        if k in extra:
            allowed = extra[k]
        elif k in params:
            allowed = _allowed(params[k])
        elif takes_all:
            continue
        else:
            valid = sorted(set(params) | set(extra))
            raise TunesmithError(f"{source}: unknown config key {section}.{k!r}; valid keys: {', '.join(valid)}")
        if allowed is not None and not _type_ok(v, allowed):
            want = " or ".join(dict.fromkeys(_WORDS[a] for a in sorted(allowed) if a != "None"))
            raise TunesmithError(f"{source}: [{section}] {k} must be {want}, got {_show(v)}")
        if isinstance(v, float) and not math.isfinite(v):
            raise TunesmithError(f"{source}: [{section}] {k} must be a finite number, got {_show(v)}")


def _sample_rules(values: dict, source: str) -> None:
    """Ranges of the sampling controls every family shares."""
    rules = {"temperature": (0, False), "num": (1, True), "steps": (1, True), "top_k": (1, True), "tempo": (0, False)}
    for k, (lo, incl) in rules.items():
        v = values.get(k)
        if v is None:
            continue
        if not _is_num(v) or (v < lo if incl else v <= lo):
            raise TunesmithError(f"{source}: [sample] {k} must be {'a positive number' if not incl else f'an integer >= {lo}'}"
                                 f", got {_show(v)}")
    from .data.midi import TEMPO_RANGE

    t = values.get("tempo")
    if t is not None and not TEMPO_RANGE[0] <= t <= TEMPO_RANGE[1]:
        raise TunesmithError(f"{source}: [sample] tempo must be between {TEMPO_RANGE[0]:g} and {TEMPO_RANGE[1]:g} "
                             f"quarter notes per minute, got {t}")


# ---------------------------------------------------------------------------------- memory estimate
def _ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


WIDTH_KEYS = ("hidden", "d_model", "embed_dim", "channels", "hidden_size", "width", "filters")
LENGTH_KEYS = ("seq_len", "clip_seconds", "bars")


def estimate_bytes(cfg) -> int:
    """A rough estimate of the activation memory of one training step of a sequence model: batch x
    data.seq_len x width x layers x 4 bytes x 24 (an LSTM keeps ~6 vectors of its width per token and layer
    for the backward pass; gradients and temporaries double that twice). Used only to refuse sizes that
    cannot fit, with the number in the message; configs without ``seq_len`` are not estimated."""
    data, model, tc = cfg.data, cfg.model, cfg.train
    length = 1
    for k in ("seq_len",):
        if _is_int(data.get(k)):
            length = max(length, data[k])
    width = max([model[k] for k in WIDTH_KEYS if _is_int(model.get(k))] or [256])
    layers = max([model[k] for k in ("layers", "n_layers", "num_layers") if _is_int(model.get(k))] or [1])
    batch = tc.batch_size if _is_int(tc.batch_size) else 1
    activations = int(batch) * int(length) * int(width) * int(layers) * 4 * 24
    # parameters: a recurrent/attention layer holds ~8 width^2 weights (4 gates x (input + hidden) for an
    # LSTM), x 4 bytes x 4 copies (weights, gradients, Adam's two moments): hidden = 1e6 asked for 16 TB
    parameters = int(layers) * 8 * int(width) ** 2 * 4 * 4
    return activations + parameters


def check_memory(cfg, source: str) -> None:
    need, have = estimate_bytes(cfg), _ram_bytes()
    if need > have:
        raise TunesmithError(f"{source}: this config needs about {need / 2**30:,.0f} GiB for one training step "
                             f"(batch {cfg.train.batch_size} x length x width, plus width^2 parameters) and this machine has "
                             f"{have / 2**30:,.0f} GiB: lower data.seq_len, train.batch_size or the model size")


SIZE_KEYS = {"seq_len", "hidden", "hidden_size", "layers", "num_layers", "n_layers", "d_model",
             "latent_dim", "n_heads", "heads", "phrase_len", "bars", "steps_per_bar", "enc_hidden", "dec_hidden",
             "dec_layers"}


# ---------------------------------------------------------------------------------- all sections
def validate(cfg, source: str) -> None:
    """Check every section of a loaded ``Config``; raise ``TunesmithError`` with one line on the first problem."""
    import dataclasses

    check_train({f.name: getattr(cfg.train, f.name) for f in dataclasses.fields(cfg.train)}, source)
    from .data import _load_encodings
    from .data.base import BUILDERS
    from .models import get_model_class

    _load_encodings()
    data = dict(cfg.data)
    enc = data.pop("encoding")
    if not isinstance(enc, str) or enc not in BUILDERS:
        raise TunesmithError(f"{source}: unknown data.encoding {enc!r}; known: {', '.join(sorted(BUILDERS))}")
    check_against(BUILDERS[enc], data, "data", source)
    model = dict(cfg.model)
    name = model.pop("name")
    if not isinstance(name, str):
        raise TunesmithError(f"{source}: [model] name must be a string, got {_show(name)}")
    cls = get_model_class(name)
    check_against(cls.__init__, model, "model", source)
    for sec, table in (("data", data), ("model", model)):  # sizes: a 0 ended in a raw torch error
        for k in SIZE_KEYS & set(table):
            v = table[k]
            if _is_int(v) and v < 1:
                raise TunesmithError(f"{source}: [{sec}] {k} must be an integer >= 1, got {_show(v)}")
    for k in ("dropout", "val_fraction", "attr_code_dropout"):  # probabilities / fractions, whatever the family
        v = model.get(k, data.get(k))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not (math.isfinite(v) and 0 <= v < 1):
            raise TunesmithError(f"{source}: [{'model' if k in model else 'data'}] {k} must be in [0, 1), got {_show(v)}")
    for k, positive in (("attr_reg", False), ("attr_reg_delta", True)):  # the melody VAE's AR-VAE weight and sharpness
        v = model.get(k)
        if _is_num(v) and not (v > 0 if positive else v >= 0):
            raise TunesmithError(f"{source}: [model] {k} must be a number {'> 0' if positive else '>= 0 (0: off)'}, got {_show(v)}")
    sample = dict(cfg.sample)
    _sample_rules(sample, source)
    check_against(cls.generate, sample, "sample", source, skip=("codec", "n", "generator"),
                  extra={"num": {"int"}})
    for k, choices in (getattr(cls, "CONTROL_CHOICES", None) or {}).items():  # a family's named options
        if k in sample and sample[k] not in choices:
            raise TunesmithError(f"{source}: [sample] {k} must be one of {', '.join(choices)}, got {_show(sample[k])}")
    check_memory(cfg, source)
