"""A compact, pitch-relative picture of a note for the conditional audio models (issue 13).

A note of known MIDI pitch becomes a small time x channel image (``data.encoding = "harmonic"``):

* channels ``0 .. harmonics-1``: the amplitude of harmonic k (k = 1 .. harmonics, at k x f0 where f0 is
  the dataset's pitch) in each STFT frame, read as the largest |STFT| within one bin of k x f0 and scaled
  so a full-scale sine reads 1; harmonics at or above 0.95 x Nyquist are silent;
* the last ``noise_bands`` channels: the noise floor, the median |STFT| over each of ``noise_bands`` bands
  (equal width on the mel scale), which skips the harmonic peaks;

each in dB clamped to [``floor_db``, 0] and mapped to [-1, 1]. It is a spectrogram whose frequency axis is
"harmonic number" instead of "Hz": GANSynth's log-magnitude image, made pitch-relative and ~60 x smaller
(80 x 128 instead of 2 x 256 x 512). :meth:`HarmonicCodec.synthesize` turns it back into audio at any
requested pitch: a sum of sinusoids at k x f0 with the (linearly interpolated) amplitudes, plus white
noise shaped by the noise bands (a DDSP-style harmonic-plus-noise synthesiser, without learned filters).
The pitch of the output is therefore the requested pitch by construction; what a model learns is the
timbre (the harmonic and noise envelopes) of a family at a pitch.

``HarmonicCodec.analyze(x, pitch)`` and ``synthesize(image, pitch)`` round-trip a note; the loss is the
phase (the synthesiser starts every harmonic at a seeded random phase) and the detail inside a band.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .base import Codec, DataBundle, TensorData, register_encoding


def midi_to_hz(pitch) -> torch.Tensor:
    return 440.0 * 2.0 ** ((torch.as_tensor(pitch, dtype=torch.float32) - 69.0) / 12.0)


class HarmonicCodec(Codec):
    """Audio of a note of known pitch <-> (harmonics + noise_bands, frames) image in [-1, 1]."""

    name = "harmonic"

    def __init__(self, sample_rate: int = 16000, clip_seconds: float = 4.0, n_fft: int = 1024, hop: int = 512,
                 frames: int = 128, harmonics: int = 64, noise_bands: int = 16, floor_db: float = -80.0,
                 labels: list[str] | None = None, pitch_range: list[int] | None = None, dataset: str = ""):
        self.sample_rate, self.clip_seconds = int(sample_rate), float(clip_seconds)
        self.n_fft, self.hop, self.frames = int(n_fft), int(hop), int(frames)
        self.harmonics, self.noise_bands, self.floor_db = int(harmonics), int(noise_bands), float(floor_db)
        self.labels = list(labels or [])
        self.pitch_range = [int(p) for p in (pitch_range or [0, 127])]
        self.dataset = str(dataset)
        if self.harmonics < 1 or self.noise_bands < 1:
            raise TunesmithError("data.harmonics and data.noise_bands must be >= 1")
        self._edges = None

    # -- codec protocol
    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "sample_rate": self.sample_rate, "clip_seconds": self.clip_seconds,
                "n_fft": self.n_fft, "hop": self.hop, "frames": self.frames, "harmonics": self.harmonics,
                "noise_bands": self.noise_bands, "floor_db": self.floor_db, "labels": self.labels,
                "pitch_range": self.pitch_range, "dataset": self.dataset}

    @classmethod
    def from_state(cls, state):
        return cls(**{k: v for k, v in state.items() if k != "codec"})

    def model_info(self) -> dict[str, Any]:
        return {"channels": self.harmonics + self.noise_bands, "frames": self.frames, "num_labels": len(self.labels),
                "pitch_range": list(self.pitch_range)}

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    # -- labels and pitches (one-line errors for the CLI)
    def label_index(self, condition: str | None) -> int | None:
        if condition is None:
            return None
        if str(condition) not in self.labels:
            raise TunesmithError(f"unknown condition {condition!r}; known families: {', '.join(self.labels)}")
        return self.labels.index(str(condition))

    def check_pitch(self, pitch) -> int:
        lo, hi = self.pitch_range
        try:
            p = int(pitch)
        except (TypeError, ValueError):
            raise TunesmithError(f"--pitch must be a MIDI note number, got {pitch!r}") from None
        if p != pitch or not lo <= p <= hi:
            raise TunesmithError(f"--pitch {pitch} is outside the MIDI pitches this model was trained on "
                                 f"({lo}-{hi}); pick one in that range")
        return p

    def load(self, path) -> np.ndarray:
        from .audio import load_wav  # noqa: PLC0415

        return load_wav(path, self.sample_rate, self.clip_seconds)

    # -- helpers
    def _band_edges(self) -> torch.Tensor:
        if self._edges is None:
            mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
            imel = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
            hz = imel(np.linspace(mel(0.0), mel(self.sample_rate / 2), self.noise_bands + 1))
            bins = np.round(hz / self.sample_rate * self.n_fft).astype(int)
            bins = np.maximum.accumulate(np.maximum(bins, np.arange(len(bins))))  # >= 1 bin per band
            self._edges = torch.as_tensor(np.minimum(bins, self.n_fft // 2 + 1))
        return self._edges

    def _to_unit(self, amp: torch.Tensor) -> torch.Tensor:
        db = 20 * torch.log10(amp.clamp_min(1e-10))
        return (db.clamp(self.floor_db, 0.0) - self.floor_db) / (-self.floor_db) * 2 - 1

    def _from_unit(self, v: torch.Tensor) -> torch.Tensor:
        db = (v.clamp(-1, 1) + 1) / 2 * (-self.floor_db) + self.floor_db
        return torch.where(v <= -1 + 1e-4, torch.zeros_like(db), 10 ** (db / 20))

    def _fit(self, img: torch.Tensor) -> torch.Tensor:
        T = img.shape[-1]
        if T >= self.frames:
            return img[..., : self.frames].contiguous()
        return torch.nn.functional.pad(img, (0, self.frames - T), value=-1.0)

    # -- audio -> image
    def analyze(self, x, pitch) -> torch.Tensor:
        """(B, samples) audio and (B,) MIDI pitches -> (B, harmonics + noise_bands, frames) in [-1, 1]."""
        t = torch.as_tensor(np.asarray(x, np.float32))
        single = t.dim() == 1
        t = t[None] if single else t
        p = torch.as_tensor(pitch, dtype=torch.float32).reshape(-1)
        if len(p) == 1 and len(t) > 1:
            p = p.expand(len(t))
        out = []
        for i in range(0, len(t), 64):  # bounded memory
            out.append(self._analyze(t[i:i + 64], p[i:i + 64]))
        img = self._fit(torch.cat(out))
        return img[0] if single else img

    def _analyze(self, t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        win = torch.hann_window(self.n_fft)
        mag = torch.stft(t, self.n_fft, self.hop, window=win, return_complex=True).abs() / (self.n_fft / 4)
        B, n_freq, T = mag.shape
        f0 = midi_to_hz(p)                                          # (B,)
        k = torch.arange(1, self.harmonics + 1, dtype=torch.float32)
        fk = f0[:, None] * k                                        # (B, H)
        centre = torch.round(fk / self.sample_rate * self.n_fft).long()
        amps = []
        for d in (-1, 0, 1):
            idx = (centre + d).clamp(0, n_freq - 1)                 # (B, H)
            amps.append(torch.gather(mag, 1, idx[:, :, None].expand(B, self.harmonics, T)))
        harm = torch.stack(amps).amax(0)                            # (B, H, T)
        harm = torch.where((fk < 0.95 * self.sample_rate / 2)[:, :, None], harm, torch.zeros_like(harm))
        e = self._band_edges()
        noise = torch.stack([mag[:, e[b]:max(e[b + 1], e[b] + 1)].median(1).values
                             for b in range(self.noise_bands)], 1)  # (B, N, T)
        return torch.cat([self._to_unit(harm), self._to_unit(noise)], 1)

    # -- image -> audio
    def synthesize(self, img, pitch, seed: int = 0) -> np.ndarray:
        """(harmonics + noise_bands, frames) image in [-1, 1] and a MIDI pitch -> (num_samples,) float32."""
        v = torch.as_tensor(np.asarray(img, np.float32))
        H, n = self.harmonics, self.num_samples
        gen = torch.Generator().manual_seed(int(seed))
        f0 = float(midi_to_hz(pitch))
        amp = self._from_unit(v[:H])                                # (H, frames)
        amp = torch.where((torch.arange(1, H + 1) * f0 < 0.95 * self.sample_rate / 2)[:, None], amp,
                          torch.zeros_like(amp))
        # frame t is centred on sample t * hop (torch.stft(center=True)): linear interpolation in between
        pos = torch.arange(n, dtype=torch.float32) / self.hop
        i0 = pos.floor().long().clamp(max=v.shape[1] - 1)
        i1 = (i0 + 1).clamp(max=v.shape[1] - 1)
        w = (pos - pos.floor())[None]
        env = amp[:, i0] * (1 - w) + amp[:, i1] * w                 # (H, n)
        k = torch.arange(1, H + 1, dtype=torch.float64)[:, None]
        phase0 = torch.rand(H, 1, generator=gen, dtype=torch.float64) * 2 * math.pi
        tt = torch.arange(n, dtype=torch.float64)[None] / self.sample_rate
        y = (env.double() * torch.sin(2 * math.pi * f0 * k * tt + phase0)).sum(0).float()
        # noise: white noise's STFT given each band's median magnitude, back by the inverse STFT
        noise = self._from_unit(v[H:])                              # (N, frames)
        e = self._band_edges()
        n_freq = self.n_fft // 2 + 1
        gain = torch.zeros(n_freq, v.shape[1])
        for b in range(self.noise_bands):
            gain[e[b]:max(e[b + 1], e[b] + 1)] = noise[b]
        win = torch.hann_window(self.n_fft)
        white = torch.randn(n, generator=gen)
        W = torch.stft(white, self.n_fft, self.hop, window=win, return_complex=True)
        W = W / W.abs().median().clamp_min(1e-8)                    # median magnitude 1 per bin
        T = min(W.shape[1], gain.shape[1])
        Y = W[:, :T] * gain[:, :T] * (self.n_fft / 4)
        y = y + torch.istft(Y, self.n_fft, self.hop, window=win, length=n)
        return y.numpy().astype(np.float32)


@register_encoding("harmonic")
def build_harmonic(dataset: str = "nsynth-mini", families: list[str] | None = None,
                   pitch_range: list[int] | None = None, max_items: int | None = None, val_fraction: float = 0.1,
                   split_seed: int = 0, sample_rate: int = 16000, clip_seconds: float = 4.0, n_fft: int = 1024,
                   hop: int = 512, frames: int = 128, harmonics: int = 64, noise_bands: int = 16,
                   floor_db: float = -80.0) -> DataBundle:
    """Notes of an NSynth-layout dataset as harmonic + noise images with their family and MIDI pitch:
    ``{"image": (B, harmonics + noise_bands, frames), "label": (B,), "pitch": (B,)}``. The split is the
    dataset's own (:func:`tunesmith.data.nsynth.split_clips`: by instrument where the dataset says so, as
    nsynth-small does)."""
    from . import audio_encodings as A

    clips, labels, train, val = A._prepare(dataset, families, pitch_range, max_items, val_fraction, split_seed)
    if any(c.pitch < 0 for c in clips):
        raise TunesmithError(f"data.encoding 'harmonic' needs the MIDI pitch of every clip; {dataset} has clips "
                             "without one (an NSynth-layout folder lists it in examples.json)")
    pitches = [c.pitch for c in train]
    codec = HarmonicCodec(sample_rate, clip_seconds, n_fft, hop, frames, harmonics, noise_bands, floor_db,
                          labels=labels, pitch_range=[min(pitches), max(pitches)], dataset=str(dataset))

    def tensors(cl):
        xs = A._load_audio(cl, codec)
        p = torch.tensor([c.pitch for c in cl], dtype=torch.long)
        return TensorData(image=codec.analyze(xs, p), label=A._label_ids(cl, labels), pitch=p)

    tr = tensors(train)
    va = tensors(val) if val else None
    return DataBundle(tr, va, codec, A._stats(clips, train, val, labels, items=len(tr)), reference=list(val))
