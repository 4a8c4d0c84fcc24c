"""What every encoding provides to the rest of tunesmith.

* a **Dataset**: ``len(ds)`` items and ``ds.batch(indices) -> dict[str, Tensor]`` (in memory, so the trainer
  indexes tensors directly instead of collating Python objects one by one);
* a **Codec**: turns model outputs back into :class:`Score` (or audio), is saved as JSON in the run dir,
  and tells the model its sizes (``model_info``);
* a **builder** registered by name (``data.encoding`` in a config) that makes both from a config section.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch

from ..errors import TunesmithError


class TensorData:
    """Items are rows of equally long tensors."""

    def __init__(self, **tensors: torch.Tensor):
        if not tensors:
            raise ValueError("TensorData needs at least one tensor")
        n = {len(t) for t in tensors.values()}
        if len(n) != 1:
            raise ValueError(f"tensors have different lengths: { {k: len(v) for k, v in tensors.items()} }")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v[idx] for k, v in self.tensors.items()}


class WindowedStream:
    """Windows of ``length`` tokens cut from one long token stream every ``stride`` tokens.

    Only the stream is stored: a batch gathers ``stream[start + arange(length)]``.
    """

    def __init__(self, stream: torch.Tensor, length: int, stride: int):
        if len(stream) < length:
            raise TunesmithError(f"the data has {len(stream)} tokens, fewer than one window of {length}: "
                                 "use more songs or a shorter data.seq_len")
        self.stream, self.length = stream, length
        self.starts = torch.arange(0, len(stream) - length + 1, stride)
        self.offsets = torch.arange(length)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"tokens": self.stream[self.starts[idx][:, None] + self.offsets]}


class Codec:
    """Base class of encodings' decoders. Subclasses register themselves by ``name``."""

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type["Codec"]]] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.name:
            Codec.registry[cls.name] = cls

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state; ``from_state`` rebuilds the codec from it."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Codec":
        raise NotImplementedError

    def model_info(self) -> dict[str, Any]:
        """Sizes the model needs (e.g. ``vocab_size``), passed to its constructor."""
        return {}


def codec_from_state(state: dict[str, Any]) -> Codec:
    from . import _load_encodings

    _load_encodings()
    if not isinstance(state, dict):
        raise TunesmithError(f"the checkpoint's codec.json is garbled (a JSON {type(state).__name__}, not an "
                             "object): retrain or restore it")
    name = state.get("codec")
    if not isinstance(name, str) or name not in Codec.registry:
        raise TunesmithError(f"unknown codec {name!r} in checkpoint; is this run from a newer tunesmith?")
    try:  # a garbled field (missing key, wrong type) is bad input, not a bug
        codec = Codec.registry[name].from_state(state)
        codec.model_info()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise TunesmithError(f"the checkpoint's codec.json is garbled ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:80] if str(e) else ''}): retrain or restore it") from None
    return codec


@dataclass
class DataBundle:
    train: Any
    val: Any | None
    codec: Codec
    stats: dict[str, Any] = field(default_factory=dict)
    reference: list | None = None  # held-out pieces (Scores or audio) for evaluation
    baseline: Callable[[], dict[str, float]] | None = None  # a simple model's validation scores, for comparison


BUILDERS: dict[str, Callable[..., DataBundle]] = {}


def register_encoding(name: str):
    def deco(fn):
        BUILDERS[name] = fn
        return fn
    return deco


def check_kwargs(fn: Callable, kwargs: dict, section: str) -> None:
    """One-line error for a config key the function does not take."""
    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    valid = [k for k, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for k in kwargs:
        if k not in valid:
            raise TunesmithError(f"unknown config key {section}.{k!r}; valid keys: {', '.join(sorted(valid))}")


def build_data(encoding: str, **kwargs) -> DataBundle:
    from . import _load_encodings

    _load_encodings()
    if encoding not in BUILDERS:
        raise TunesmithError(f"unknown data.encoding {encoding!r}; known: {', '.join(sorted(BUILDERS))}")
    fn = BUILDERS[encoding]
    check_kwargs(fn, kwargs, "data")
    return fn(**kwargs)
