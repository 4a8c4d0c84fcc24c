"""Primers, temperature, latent walks; writing MIDI and WAV."""
from .generate import sample_run  # noqa: F401
from .render import render_midi  # noqa: F401
