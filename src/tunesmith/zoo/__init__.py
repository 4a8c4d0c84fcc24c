"""The model zoo: small trained runs shipped inside the package, loaded as ``zoo:NAME``.

Layout of one entry, ``src/tunesmith/zoo/NAME/``:

- ``checkpoint/`` -- a run's checkpoint folder (``model.safetensors`` in half precision, ``config.json``,
  ``codec.json``, ``meta.json``; no optimizer state), so every command that takes a run directory takes it;
- ``card.json`` -- the model card as data: ``title``, ``description`` (one line, shown in the web page),
  ``family``, ``data``, ``split``, ``command`` (``scripts/train_zoo.sh NAME``), ``steps``, ``wall_time_s``,
  ``hardware``, ``figures`` (name -> measured value, checked by the zoo test against a fresh evaluation),
  ``weaknesses`` (list of sentences);
- ``README.md`` -- the same card for people.

Nothing is downloaded: the weights are package data.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import TunesmithError

ZOO_DIR = Path(__file__).resolve().parent
PREFIX = "zoo:"


def names() -> list[str]:
    """Names of the shipped models (folders with a checkpoint)."""
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "checkpoint" / "model.safetensors").exists())


#: the order in which `tunesmith serve` (no run given) offers the zoo: the page opens on the first, the melody
#: VAE whose sliders change the melody as they move; a model not listed comes after these, by name
PAGE_ORDER = ("melody-vae-4bar", "essen-lstm", "essen-transformer", "chorale-harmonizer", "essen-gan-rhythm",
              "melody-vae-4bar-cond", "audio-cvae")


def page_order(names) -> list[str]:
    """``names`` in :data:`PAGE_ORDER`, the others after them by name."""
    rank = {n: i for i, n in enumerate(PAGE_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def is_zoo(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def resolve_run(spec) -> Path:
    """``zoo:NAME`` -> the entry's folder inside the package; anything else -> ``Path(spec)``."""
    if not is_zoo(spec):
        return Path(spec)
    name = spec[len(PREFIX):]
    have = names()
    if name not in have:
        raise TunesmithError(f"no zoo model {name!r}; shipped: {', '.join(have) or 'none'} (tunesmith zoo lists them)")
    return ZOO_DIR / name


def card(name: str) -> dict:
    """The model card of a zoo entry as a dict (``{}`` when it has none)."""
    p = resolve_run(name if is_zoo(name) else PREFIX + name) / "card.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TunesmithError(f"model card {p} is garbled: reinstall tunesmith") from None


def size_bytes() -> int:
    """Total size of all shipped files (the zoo must stay under 30 MB)."""
    return sum(f.stat().st_size for f in ZOO_DIR.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


CARD_KEYS = ("title", "description", "family", "data", "split", "command", "steps", "wall_time_s", "hardware",
             "figures", "weaknesses")


def export(run_dir, name: str, card: dict, dest: Path | None = None) -> Path:
    """Copy a trained run into the zoo as ``NAME/``: the checkpoint's weights in float16 (integer buffers
    unchanged), ``config.json``, ``codec.json``, ``meta.json`` (no optimizer state), ``card.json`` and a
    ``README.md`` written from the card. ``card`` must have every key in :data:`CARD_KEYS`. Returns the folder."""
    import re
    import shutil

    from safetensors.torch import load_file, save_file

    from ..training.checkpoint import checkpoint_dir

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name):
        raise TunesmithError(f"zoo name {name!r}: use lower-case letters, digits, '.', '_' and '-'")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise TunesmithError(f"the model card lacks {', '.join(missing)}")
    src = checkpoint_dir(run_dir)
    out = Path(dest) if dest is not None else ZOO_DIR / name
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "checkpoint").mkdir(parents=True)
    tensors = load_file(str(src / "model.safetensors"))
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    save_file(half, str(tmp / "checkpoint" / "model.safetensors"))
    for f in ("config.json", "codec.json", "meta.json"):
        if (src / f).exists():
            shutil.copy2(src / f, tmp / "checkpoint" / f)
    (tmp / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (tmp / "README.md").write_text(card_markdown(name, card))
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


def card_markdown(name: str, card: dict) -> str:
    """The model card for people."""
    lines = [f"# {card['title']} (`zoo:{name}`)", "", card["description"], "",
             f"- **family**: {card['family']}", f"- **data**: {card['data']}", f"- **split**: {card['split']}",
             f"- **made by**: `{card['command']}` ({card['steps']} steps, {card['wall_time_s']:.0f} s on "
             f"{card['hardware']})", "", "## Measured figures", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in card["figures"].items()]
    if card.get("figure_notes"):
        lines += ["", card["figure_notes"]]
    lines += ["", "## Known weaknesses", ""] + [f"- {w}" for w in card["weaknesses"]]
    lines += ["", "## Use", "", "```", f"tunesmith sample zoo:{name} --out out/", f"tunesmith serve zoo:{name}", "```", ""]
    return "\n".join(lines)
