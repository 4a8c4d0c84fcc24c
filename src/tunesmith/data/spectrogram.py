"""GANSynth-style spectrograms and raw waveforms as codecs (seed 003).

STFT with ``n_fft`` 1024 and hop 256, the Nyquist bin dropped (513 -> 512 bins) and the time axis
padded/trimmed to 256 frames, giving a (2, 256, 512) "image" (channels first): channel 0 is the log
magnitude, channel 1 the phase (or its instantaneous frequency, ``phase = "if"``), both scaled to [-1, 1].
``mel = true`` replaces the linear bins by log-mel bins (one channel; inverted with Griffin-Lim).
``mel_inversion`` says how the mel magnitudes become linear ones: ``"pinv"`` (the pseudo-inverse of the mel
filters, clipped at 0, then ``griffin_lim_iters`` plain Griffin-Lim iterations) or ``"nnls"`` (librosa's
non-negative least squares ``mel_to_stft``, then its fast Griffin-Lim, momentum 0.99, same iterations).
:meth:`SpecCodec.spec_to_audio` inverts; :class:`WaveCodec` keeps the raw samples.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .audio import load_wav
from .base import Codec


class SpecCodec(Codec):
    """Audio <-> GANSynth-style spectrogram images, plus the clip labels (instrument families / genres)."""

    name = "spectrogram"

    def __init__(self, sample_rate: int = 16000, clip_seconds: float = 4.0, n_fft: int = 1024, hop: int = 256,
                 frames: int = 256, bins: int = 512, phase: str = "phase", mel: bool = False, n_mels: int = 128,
                 log_floor: float = 1e-5, log_ceiling: float | None = None, labels: list[str] | None = None,
                 context: int = 0, dataset: str = "", griffin_lim_iters: int = 32, mel_inversion: str = "pinv"):
        if phase not in ("phase", "if"):
            raise TunesmithError(f"data.phase must be 'phase' or 'if' (instantaneous frequency), not {phase!r}")
        if bins > n_fft // 2 and not mel:
            raise TunesmithError(f"data.bins {bins} is more than n_fft/2 = {n_fft // 2} frequency bins")
        if mel_inversion not in ("pinv", "nnls"):
            raise TunesmithError(f"data.mel_inversion must be 'pinv' or 'nnls', not {mel_inversion!r}")
        self.sample_rate, self.clip_seconds = int(sample_rate), float(clip_seconds)
        self.n_fft, self.hop, self.frames, self.bins = int(n_fft), int(hop), int(frames), int(bins)
        self.phase, self.mel, self.n_mels = phase, bool(mel), int(n_mels)
        self.log_floor = float(log_floor)
        # the loudest bin a [-1, 1] signal can give under a Hann window is sum(window) = n_fft / 2 (DC);
        # a full-scale sine gives n_fft / 4
        self.log_ceiling = float(log_ceiling if log_ceiling is not None else n_fft / 2)
        self.labels = list(labels or [])
        self.context, self.dataset, self.griffin_lim_iters = int(context), str(dataset), int(griffin_lim_iters)
        self.mel_inversion = str(mel_inversion)
        self._melfb = None

    # -- codec protocol
    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "sample_rate": self.sample_rate, "clip_seconds": self.clip_seconds,
                "n_fft": self.n_fft, "hop": self.hop, "frames": self.frames, "bins": self.bins, "phase": self.phase,
                "mel": self.mel, "n_mels": self.n_mels, "log_floor": self.log_floor, "log_ceiling": self.log_ceiling,
                "labels": self.labels, "context": self.context, "dataset": self.dataset,
                "griffin_lim_iters": self.griffin_lim_iters, "mel_inversion": self.mel_inversion}

    @classmethod
    def from_state(cls, state):
        return cls(**{k: v for k, v in state.items() if k != "codec"})

    @property
    def channels(self) -> int:
        return 1 if self.mel else 2

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    def model_info(self) -> dict[str, Any]:
        return {"channels": self.channels, "frames": self.frames, "bins": self.bins, "num_labels": len(self.labels),
                "context": self.context}

    # -- helpers
    def _mel_basis(self) -> torch.Tensor:
        if self._melfb is None:
            import librosa

            fb = librosa.filters.mel(sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.bins)
            self._melfb = torch.as_tensor(fb, dtype=torch.float32)  # (bins, n_fft/2 + 1)
        return self._melfb

    def _scale(self, logmag: torch.Tensor) -> torch.Tensor:
        lo, hi = math.log(self.log_floor), math.log(self.log_ceiling)
        return ((logmag.clamp(lo, hi) - lo) / (hi - lo) * 2 - 1)

    def _unscale(self, v: torch.Tensor) -> torch.Tensor:
        lo, hi = math.log(self.log_floor), math.log(self.log_ceiling)
        return (v.clamp(-1, 1) + 1) / 2 * (hi - lo) + lo

    def _fit_frames(self, s: torch.Tensor) -> torch.Tensor:
        """Pad (log magnitude with the floor -1, phase with 0) or trim the time axis (dim -2) to ``frames``."""
        T = s.shape[-2]
        if T >= self.frames:
            return s[..., : self.frames, :].contiguous()
        pad = torch.full((*s.shape[:-2], self.frames - T, s.shape[-1]), -1.0)
        if not self.mel:
            pad[..., 1, :, :] = 0.0
        return torch.cat([s, pad], -2)

    # -- audio -> spectrogram
    def audio_to_spec(self, x) -> torch.Tensor:
        """(samples,) -> (channels, frames, bins) in [-1, 1]; a batch (B, samples) -> (B, channels, frames, bins)."""
        t = torch.as_tensor(np.asarray(x, np.float32))
        if t.dim() == 1:
            return self.audio_to_spec(t[None])[0]
        if len(t) > 32:  # bounded memory
            return torch.cat([self.audio_to_spec(t[i:i + 32]) for i in range(0, len(t), 32)])
        S = torch.stft(t, self.n_fft, self.hop, window=torch.hann_window(self.n_fft), return_complex=True)
        S = S.transpose(1, 2)  # (B, time, freq)
        if self.mel:
            mag = (S.real ** 2 + S.imag ** 2) @ self._mel_basis().T
            spec = self._scale(torch.log(mag.clamp_min(1e-20)) / 2)[:, None]
            return self._fit_frames(spec)
        S = S[..., : self.bins]
        logmag = self._scale(torch.log(S.abs().clamp_min(1e-20)))
        ph = torch.atan2(S.imag, S.real)
        if self.phase == "if":
            ph = instantaneous_frequency(ph, time_axis=1)
        else:
            ph = ph / math.pi
        return self._fit_frames(torch.stack([logmag, ph], 1))

    def audio_batch_to_spec(self, xs) -> torch.Tensor:
        return self.audio_to_spec(np.asarray(xs, np.float32).reshape(len(xs), -1))

    # -- spectrogram -> audio
    def spec_to_audio(self, spec, griffin_lim: bool = False) -> np.ndarray:
        """(channels, frames, bins) in [-1, 1] -> (num_samples,) float32 audio (the inverse of
        :meth:`audio_to_spec`: magnitude and phase; Griffin-Lim for mel, or when ``griffin_lim`` asks to
        ignore the phase channel, e.g. a model's blurred phase)."""
        s = torch.as_tensor(np.asarray(spec, np.float32)).float()
        n_freq = self.n_fft // 2 + 1
        length = self.hop * (s.shape[-2] - 1)
        win = torch.hann_window(self.n_fft)
        if self.mel and self.mel_inversion == "nnls":
            import librosa

            power = torch.exp(2 * self._unscale(s[0])).T.numpy().astype(np.float64)  # (bins, T) mel power
            lin = librosa.feature.inverse.mel_to_stft(power, sr=self.sample_rate, n_fft=self.n_fft, power=2.0)
            y = torch.as_tensor(librosa.griffinlim(lin, n_iter=self.griffin_lim_iters, hop_length=self.hop,
                                                   n_fft=self.n_fft, length=length, init=None, momentum=0.99))
        elif self.mel:
            mag = torch.exp(self._unscale(s[0]))  # (T, bins) mel magnitudes
            lin = (mag ** 2) @ torch.linalg.pinv(self._mel_basis()).T
            lin = lin.clamp_min(0).sqrt().T  # (n_freq, T)
            y = griffin_lim_audio(lin, self.n_fft, self.hop, self.griffin_lim_iters, length)
        elif griffin_lim:
            mag = torch.exp(self._unscale(s[0]))
            mag = torch.where(s[0] <= -1 + 1e-6, torch.zeros_like(mag), mag)
            lin = torch.zeros(s.shape[-2], n_freq)
            lin[:, : self.bins] = mag
            y = griffin_lim_audio(lin.T, self.n_fft, self.hop, self.griffin_lim_iters, length)
        else:
            mag = torch.exp(self._unscale(s[0]))
            mag = torch.where(s[0] <= -1 + 1e-6, torch.zeros_like(mag), mag)  # the floor is silence
            if self.phase == "if":
                ph = torch.cumsum(s[1] * math.pi, 0)
            else:
                ph = s[1].clamp(-1, 1) * math.pi
            full = torch.zeros(s.shape[-2], n_freq, dtype=torch.complex64)
            full[:, : self.bins] = torch.polar(mag, ph)
            y = torch.istft(full.T, self.n_fft, self.hop, window=win, length=length)
        y = y.numpy().astype(np.float32)
        n = self.num_samples
        return np.pad(y[:n], (0, max(0, n - len(y))))

    def load(self, path) -> np.ndarray:
        return load_wav(path, self.sample_rate, self.clip_seconds)

    def label_index(self, condition: str | None) -> int | None:
        if condition is None:
            return None
        if str(condition) not in self.labels:
            raise TunesmithError(f"unknown condition {condition!r}; known: {', '.join(self.labels) or '(none)'}")
        return self.labels.index(str(condition))


class WaveCodec(SpecCodec):
    """Raw waveforms: the audio itself (peak-normalised to [-1, 1]) and its label."""

    name = "waveform"

    def model_info(self) -> dict[str, Any]:
        return {"num_samples": self.num_samples, "num_labels": len(self.labels), "sample_rate": self.sample_rate}


def instantaneous_frequency(phase: torch.Tensor, time_axis: int = 0) -> torch.Tensor:
    """GANSynth's IF: the time difference of the unwrapped phase, wrapped to [-pi, pi) and divided by pi."""
    d = torch.diff(phase, dim=time_axis, prepend=torch.zeros_like(phase.narrow(time_axis, 0, 1)))
    d = torch.remainder(d + math.pi, 2 * math.pi) - math.pi
    return d / math.pi


def griffin_lim_audio(mag: torch.Tensor, n_fft: int, hop: int, iters: int, length: int) -> torch.Tensor:
    """Phase from magnitude (n_freq, frames) by Griffin-Lim (zero initial phase, ``iters`` iterations)."""
    win = torch.hann_window(n_fft)
    angles = torch.ones_like(mag, dtype=torch.complex64)
    y = torch.istft(mag * angles, n_fft, hop, window=win, length=length)
    for _ in range(iters):
        S = torch.stft(y, n_fft, hop, window=win, return_complex=True)[:, : mag.shape[1]]
        if S.shape[1] < mag.shape[1]:
            S = torch.nn.functional.pad(S, (0, mag.shape[1] - S.shape[1]))
        angles = S / S.abs().clamp_min(1e-8)
        y = torch.istft(mag * angles, n_fft, hop, window=win, length=length)
    return y


