"""The audio encodings (``data.encoding``) models train on (seed 003):

* ``spectrogram``: whole clips as (channels, frames, bins) spectrograms + family label + MIDI pitch (GAN);
* ``spectrogram_frames``: windows of ``context`` frames and the frame that follows (BiLSTM);
* ``waveform``: raw samples + family label + MIDI pitch (WaveNet autoencoder, CVAE).

Every encoding splits the clips as :func:`tunesmith.data.nsynth.split_clips` does: by the dataset's own
instrument split where it has one (``nsynth-small``: training instruments vs held-out ones; the test
instruments are never loaded), else at random with ``val_fraction`` / ``split_seed``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .audio import load_wav
from .base import DataBundle, TensorData, register_encoding
from .nsynth import NSYNTH_FAMILIES, Clip, load_clips, split_clips
from .spectrogram import SpecCodec, WaveCodec


class FrameWindows:
    """Windows of ``context + 1`` consecutive spectrogram frames, cut from whole clips every ``stride``
    frames: ``batch`` gives ``{"frames": (B, context + 1, channels * bins)}`` (flattened per frame)."""

    def __init__(self, specs: torch.Tensor, context: int, stride: int = 1, last_frame: int | None = None):
        C, T, F = specs.shape[1:]
        self.frames = specs.permute(0, 2, 1, 3).reshape(len(specs), T, C * F).contiguous()
        last = min(T, last_frame or T)
        if last < context + 1:
            raise TunesmithError(f"data.context {context} needs clips of more than {context} frames (have {last})")
        starts = torch.arange(0, last - context, stride)
        self.index = torch.cartesian_prod(torch.arange(len(specs)), starts)
        self.offsets = torch.arange(context + 1)

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        clip, start = self.index[idx, 0], self.index[idx, 1]
        return {"frames": self.frames[clip[:, None], start[:, None] + self.offsets]}


def _label_ids(clips: list[Clip], labels: list[str]) -> torch.Tensor:
    return torch.tensor([labels.index(c.label) for c in clips], dtype=torch.long)


def _pitches(clips: list[Clip]) -> torch.Tensor:
    """MIDI pitch of each clip (-1 where the dataset does not say, e.g. GTZAN)."""
    return torch.tensor([c.pitch for c in clips], dtype=torch.long)


def _load_audio(clips: list[Clip], codec: SpecCodec, offset: float = 0.0) -> np.ndarray:
    xs = np.stack([load_wav(c.path, codec.sample_rate, codec.clip_seconds, offset) for c in clips]) \
        if clips else np.zeros((0, codec.num_samples), np.float32)
    peak = np.abs(xs).max(axis=1, keepdims=True) if len(xs) else 1.0
    return (xs / np.maximum(peak, 1e-8)).astype(np.float32)  # peak-normalised like the seed (to [-1, 1])


def _prepare(dataset, families, pitch_range, max_items, val_fraction, split_seed):
    clips = load_clips(dataset, families, pitch_range, max_items)
    labels = sorted({c.label for c in clips}, key=lambda s: (NSYNTH_FAMILIES.index(s) if s in NSYNTH_FAMILIES
                                                             else 99, s))
    train, val = split_clips(clips, val_fraction, split_seed)
    if not train:
        raise TunesmithError(f"no training clips left after holding out {val_fraction:.0%} of {len(clips)}")
    return clips, labels, train, val


def _stats(clips, train, val, labels, **more) -> dict[str, Any]:
    return {"clips": len(clips), "train_clips": len(train), "val_clips": len(val), "labels": labels, **more}


def val_subset(val: list[Clip], max_items: int | None) -> list[Clip]:
    """At most ``max_items`` of the held-out clips, evenly spaced over their (fixed, sorted) order: the
    same subset at every validation and on every run, spread over families and pitches."""
    if max_items is None:
        return list(val)
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
        raise TunesmithError(f"data.val_max_items must be an integer >= 1 (or left out for every held-out clip), "
                             f"got {max_items!r}")
    if len(val) <= max_items:
        return list(val)
    idx = np.linspace(0, len(val) - 1, max_items).round().astype(int)
    return [val[i] for i in idx]


def _reference(val: list[Clip], xs: np.ndarray, sr: int) -> list[Clip]:
    """The held-out clips (with their WAV paths) for evaluation."""
    return list(val)


@register_encoding("spectrogram")
def build_spectrogram(dataset: str = "nsynth-mini", families: list[str] | None = None,
                      pitch_range: list[int] | None = None, max_items: int | None = None, val_fraction: float = 0.1,
                      split_seed: int = 0, sample_rate: int = 16000, clip_seconds: float = 4.0, offset: float = 0.0,
                      n_fft: int = 1024, hop: int = 256, frames: int = 256, bins: int = 512, phase: str = "phase",
                      mel: bool = False, log_floor: float = 1e-5) -> DataBundle:
    """Whole clips as (channels, frames, bins) spectrograms in [-1, 1] plus their label index."""
    clips, labels, train, val = _prepare(dataset, families, pitch_range, max_items, val_fraction, split_seed)
    codec = SpecCodec(sample_rate, clip_seconds, n_fft, hop, frames, bins, phase, mel, log_floor=log_floor,
                      labels=labels, dataset=str(dataset))
    xt, xv = _load_audio(train, codec, offset), _load_audio(val, codec, offset)
    tr = TensorData(spec=codec.audio_batch_to_spec(xt), label=_label_ids(train, labels), pitch=_pitches(train))
    va = TensorData(spec=codec.audio_batch_to_spec(xv), label=_label_ids(val, labels), pitch=_pitches(val)) if val else None
    return DataBundle(tr, va, codec, _stats(clips, train, val, labels, items=len(tr)),
                      reference=_reference(val, xv, codec.sample_rate))


@register_encoding("spectrogram_frames")
def build_spectrogram_frames(dataset: str = "nsynth-mini", families: list[str] | None = None,
                             pitch_range: list[int] | None = None, max_items: int | None = None,
                             val_fraction: float = 0.1, split_seed: int = 0, sample_rate: int = 16000,
                             clip_seconds: float = 4.0, offset: float = 0.0, n_fft: int = 1024, hop: int = 256,
                             frames: int = 256, bins: int = 512, phase: str = "phase", mel: bool = False,
                             log_floor: float = 1e-5, context: int = 16, stride: int = 1,
                             griffin_lim_iters: int = 32, mel_inversion: str = "pinv") -> DataBundle:
    """Windows of ``context`` spectrogram frames and the frame that follows (the BiLSTM's data). Windows
    never cross clips nor start in the zero padding past the clip's last STFT frame. ``mel_inversion`` and
    ``griffin_lim_iters``: how sampling turns mel frames back into audio (:class:`SpecCodec`)."""
    clips, labels, train, val = _prepare(dataset, families, pitch_range, max_items, val_fraction, split_seed)
    codec = SpecCodec(sample_rate, clip_seconds, n_fft, hop, frames, bins, phase, mel, log_floor=log_floor,
                      labels=labels, context=context, dataset=str(dataset), griffin_lim_iters=griffin_lim_iters,
                      mel_inversion=mel_inversion)
    xt, xv = _load_audio(train, codec, offset), _load_audio(val, codec, offset)
    real_frames = codec.num_samples // hop + 1
    tr = FrameWindows(codec.audio_batch_to_spec(xt), context, stride, real_frames)
    va = FrameWindows(codec.audio_batch_to_spec(xv), context, max(stride, context), real_frames) if val else None
    return DataBundle(tr, va, codec, _stats(clips, train, val, labels, items=len(tr), context=context),
                      reference=_reference(val, xv, codec.sample_rate))


@register_encoding("waveform")
def build_waveform(dataset: str = "nsynth-mini", families: list[str] | None = None,
                   pitch_range: list[int] | None = None, max_items: int | None = None, val_fraction: float = 0.1,
                   split_seed: int = 0, sample_rate: int = 16000, clip_seconds: float = 4.0,
                   offset: float = 0.0, val_max_items: int | None = None) -> DataBundle:
    """Raw clips ``{"audio": (B, 1, samples) in [-1, 1], "label": (B,)}`` (WaveNet autoencoder, CVAE).

    ``val_max_items``: the validation loss reads at most this many held-out clips, evenly spaced over the
    held-out list (:func:`val_subset`), so every validation sees the same notes of every family and pitch;
    a sample-level WaveNet on whole 4 s notes made one pass over all 825 of nsynth-small cost more than its
    training. Evaluation's reference (``bundle.reference``) stays the whole held-out set."""
    clips, labels, train, val = _prepare(dataset, families, pitch_range, max_items, val_fraction, split_seed)
    codec = WaveCodec(sample_rate, clip_seconds, labels=labels, dataset=str(dataset))
    vsub = val_subset(val, val_max_items)
    xt, xv = _load_audio(train, codec, offset), _load_audio(vsub, codec, offset)
    tr = TensorData(audio=torch.from_numpy(xt)[:, None], label=_label_ids(train, labels), pitch=_pitches(train))
    va = TensorData(audio=torch.from_numpy(xv)[:, None], label=_label_ids(vsub, labels), pitch=_pitches(vsub)) if vsub else None
    return DataBundle(tr, va, codec, _stats(clips, train, val, labels, items=len(tr), val_items=len(vsub)),
                      reference=_reference(val, xv, codec.sample_rate))
