"""Corpora and encodings. The stage at the bottom: imports nothing from models/training/sampling."""
import importlib

from .notes import Score  # noqa: F401

# Modules that register encodings (data.encoding names). Each new encoding module is added here.
ENCODING_MODULES = [
    "timestep",                                    # seed 000 LSTM (foundation)
    "gan_data", "tuples", "tokens", "chorale_roll",  # GANs (seeds 000, 001, 002, 004)
    "pianoroll", "seq2seq_data",                   # autoencoders and seq2seq (seed 001)
    "audio_encodings",                             # spectrograms and waveforms (seed 003)
    "coconet_data",                                # chorale harmoniser grids (issue 15)
    "melody_phrases",                              # melody VAE phrases (issue 12)
    "harmonic",                                    # harmonic + noise images of notes (issue 13)
]


def _load_encodings() -> None:
    for m in ENCODING_MODULES:  # imported on first use: `tunesmith --help` stays fast
        importlib.import_module(f"{__name__}.{m}")
