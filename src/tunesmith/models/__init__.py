"""Model families, one module each, registered by name (``model.name`` in a config)."""
from __future__ import annotations

import importlib

from ..errors import TunesmithError
from .base import MODELS, TunesmithModel, register_model  # noqa: F401

# Modules that register models. A new model family's module is added here.
MODEL_MODULES = [
    "melody_lstm",                                                    # seed 000 LSTM
    "melody_transformer",                                             # issue 16: relative attention
    "gan_dense", "lstm_gan", "patchgan", "chorale_wgan", "gan_onehot",  # GANs
    "gan_rhythm",                                                     # GAN with rhythm (issue 15)
    "autoencoder", "seq2seq",                                         # seed 001
    "spec_gan", "spec_bilstm", "wavenet", "audio_cvae",               # seed 003 audio
    "coconet",                                                        # chorale harmoniser (issue 15)
    "melody_vae",                                                     # MusicVAE-style melody VAE (issue 12)
    "audio_cond",                                                     # pitch + family conditioned audio (issue 13)
]


def _load_models() -> None:
    for m in MODEL_MODULES:  # imported on first use: `tunesmith --help` stays fast
        importlib.import_module(f"{__name__}.{m}")


def get_model_class(name: str) -> type[TunesmithModel]:
    _load_models()
    if name not in MODELS:
        raise TunesmithError(f"unknown model.name {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, info: dict, **kwargs) -> TunesmithModel:
    """Build a registered model from its config section plus the codec's ``model_info``."""
    from ..data.base import check_kwargs

    cls = get_model_class(name)
    check_kwargs(cls.__init__, kwargs, "model")
    import inspect

    params = inspect.signature(cls.__init__).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    extra = {k: v for k, v in info.items() if takes_all or k in params}
    return cls(**extra, **kwargs)
