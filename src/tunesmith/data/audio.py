"""Audio data (seed 003): NSynth and GTZAN layouts, GANSynth-style spectrograms and raw waveforms.

Layouts
    * NSynth: ``FOLDER/examples.json`` (note_str -> instrument_family_str, instrument_source_str, pitch,
      velocity, sample_rate) and ``FOLDER/audio/NOTE_STR.wav`` (16 kHz, 4 s).
    * GTZAN: ``FOLDER/GENRE/*.wav`` (one folder of clips per genre; 22,050 Hz, 30 s in the original).
    * ``nsynth-mini``: the NSynth-shaped set tunesmith renders itself (``tunesmith datasets build
      nsynth-mini``); built automatically the first time a config names it.

Spectrograms (GANSynth, Engel et al. 2019, as in the seed): STFT with ``n_fft`` 1024 and hop 256, the
Nyquist bin dropped (513 -> 512 bins) and the time axis padded/trimmed to 256 frames, giving a
(2, 256, 512) "image" (channels first): channel 0 is the log magnitude, channel 1 the phase (or its
instantaneous frequency, ``phase = "if"``), both scaled to [-1, 1]. ``mel = true`` replaces the linear
bins by log-mel bins (one channel; inverted with Griffin-Lim). :meth:`SpecCodec.spec_to_audio` inverts.

Encodings (``data.encoding``): ``spectrogram`` (whole clips: GAN), ``spectrogram_frames`` (windows of
frames: BiLSTM), ``waveform`` (raw samples: WaveNet autoencoder and CVAE).
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import TunesmithError
from .base import Codec, DataBundle, TensorData, register_encoding
from .corpora import split_by_piece

AUDIO_EXT = {".wav", ".flac", ".ogg", ".aiff", ".aif"}
#: the NSynth instrument families, in NSynth's id order
NSYNTH_FAMILIES = ["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string",
                   "synth_lead", "vocal"]


# ---------------------------------------------------------------------------------------------- loading
@dataclass
class Clip:
    """One recording and what the dataset says about it."""
    path: Path
    label: str                # NSynth instrument family or GTZAN genre
    name: str = ""
    pitch: int = -1           # MIDI pitch (NSynth), -1 if unknown
    velocity: int = -1
    source: str = ""
    sample_rate: int = 0      # as stored in the file's metadata (0 = unknown)


def load_wav(path: str | Path, sample_rate: int | None = None, seconds: float | None = None,
             offset: float = 0.0) -> np.ndarray:
    """Mono float32 samples, resampled to ``sample_rate`` (when given), cut or zero-padded to ``seconds``."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise TunesmithError(f"audio file not found: {path}")
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise TunesmithError(f"{path} is not a readable audio file ({str(e).splitlines()[0][:80]})") from None
    x = x.mean(axis=1)
    if sample_rate and sr != sample_rate:
        import librosa

        x = librosa.resample(x, orig_sr=sr, target_sr=sample_rate).astype(np.float32)
        sr = sample_rate
    a = int(round(offset * sr))
    x = x[a:]
    if seconds:
        n = int(round(seconds * sr))
        x = np.pad(x[:n], (0, max(0, n - len(x))))
    return x.astype(np.float32)


def load_nsynth(folder: str | Path) -> list[Clip]:
    """Clips of an NSynth-layout folder, sorted by name."""
    folder = Path(folder)
    js = folder / "examples.json"
    try:
        meta = json.loads(js.read_text())
    except FileNotFoundError:
        raise TunesmithError(f"{folder} has no examples.json: it is not an NSynth-layout folder") from None
    except json.JSONDecodeError as e:
        raise TunesmithError(f"{js} is not valid JSON ({e})") from None
    clips = []
    for name, m in sorted(meta.items()):
        wav = folder / "audio" / f"{m.get('note_str', name)}.wav"
        if not wav.is_file():
            raise TunesmithError(f"{js} lists {name} but {wav} is missing")
        clips.append(Clip(wav, str(m.get("instrument_family_str", "unknown")), name, int(m.get("pitch", -1)),
                          int(m.get("velocity", -1)), str(m.get("instrument_source_str", "")),
                          int(m.get("sample_rate", 0))))
    if not clips:
        raise TunesmithError(f"{js} lists no clips")
    return clips


def load_gtzan(folder: str | Path) -> list[Clip]:
    """Clips of a GTZAN-layout folder (one sub-folder of audio files per genre), sorted."""
    folder = Path(folder)
    clips = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in AUDIO_EXT:
                clips.append(Clip(f, sub.name, f"{sub.name}/{f.stem}"))
    if not clips:
        raise TunesmithError(f"{folder} has no GENRE/*.wav clips: it is not a GTZAN-layout folder")
    return clips


def find_dataset(name_or_path: str | Path) -> tuple[Path, str]:
    """(folder, layout) for ``nsynth-mini`` (built on first use) or an NSynth/GTZAN-shaped folder."""
    from . import builders

    s = str(name_or_path)
    if s in builders.BUILDABLE:
        if not builders.is_built(s):
            print(f"{s} is not built yet: building it now (tunesmith datasets build {s})", file=sys.stderr,
                  flush=True)
            builders.build(s)
        return builders.dataset_dir(s), "nsynth"
    p = Path(s).expanduser()
    if not p.is_dir():
        raise TunesmithError(f"audio dataset {s!r} is neither a buildable dataset ({', '.join(builders.BUILDABLE)}) "
                             "nor a folder (NSynth: examples.json + audio/*.wav; GTZAN: GENRE/*.wav)")
    if (p / "examples.json").is_file():
        return p, "nsynth"
    return p, "gtzan"


def load_clips(dataset: str | Path = "nsynth-mini", families: list[str] | None = None,
               pitch_range: list[int] | None = None, max_items: int | None = None) -> list[Clip]:
    """The dataset's clips, filtered by label (family or genre) and MIDI pitch range (inclusive)."""
    folder, layout = find_dataset(dataset)
    clips = load_nsynth(folder) if layout == "nsynth" else load_gtzan(folder)
    if families:
        known = sorted({c.label for c in clips})
        bad = [f for f in families if f not in known]
        if bad:
            raise TunesmithError(f"data.families: {bad[0]!r} is not in {dataset}; known: {', '.join(known)}")
        clips = [c for c in clips if c.label in set(families)]
    if pitch_range:
        lo, hi = pitch_range
        clips = [c for c in clips if c.pitch < 0 or lo <= c.pitch <= hi]
    if max_items:
        clips = clips[: int(max_items)]
    if not clips:
        raise TunesmithError(f"no clips left in {dataset} after filtering (families={families}, "
                             f"pitch_range={pitch_range})")
    return clips


def split_clips(clips: list[Clip], val_fraction: float, split_seed: int) -> tuple[list[Clip], list[Clip]]:
    return split_by_piece(clips, val_fraction, split_seed)


def reference_paths(dataset: str | Path = "nsynth-mini", families: list[str] | None = None,
                    pitch_range: list[int] | None = None, val_fraction: float = 0.1, split_seed: int = 0,
                    split: str = "val") -> list[Path]:
    """WAV paths of the held-out (``split="val"``) or training clips exactly as the encodings split them:
    the reference set for :func:`tunesmith.evaluation.audio_metrics.evaluate_audio`."""
    train, val = split_clips(load_clips(dataset, families, pitch_range), val_fraction, split_seed)
    return [c.path for c in (val if split == "val" else train)]


# ------------------------------------------------------------------------------ signal processing
def spectral_gate(x: np.ndarray, sr: int, n_std: float = 1.5, prop_decrease: float = 1.0, n_fft: int = 1024,
                  hop: int = 256, noise: np.ndarray | None = None) -> np.ndarray:
    """Noise reduction by spectral gating (the idea of the ``noisereduce`` package the seed used).

    Per frequency bin, a threshold is set at mean + ``n_std`` * std of the noise's dB magnitude (the given
    ``noise`` clip, else the quietest 20 % of the signal's own frames); bins below it are attenuated by
    ``prop_decrease`` with a mask smoothed over 3 bins x 5 frames.
    """
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(x, np.float32))
    if t.numel() < n_fft:
        return np.asarray(x, np.float32)
    win = torch.hann_window(n_fft)
    S = torch.stft(t, n_fft, hop, window=win, return_complex=True)
    db = 20 * torch.log10(S.abs() + 1e-8)
    if noise is not None:
        nd = 20 * torch.log10(torch.stft(torch.as_tensor(np.asarray(noise, np.float32)), n_fft, hop, window=win,
                                          return_complex=True).abs() + 1e-8)
    else:
        energy = db.mean(0)
        k = max(1, int(0.2 * db.shape[1]))
        nd = db[:, torch.argsort(energy)[:k]]
    thresh = nd.mean(1, keepdim=True) + n_std * nd.std(1, keepdim=True, unbiased=False).nan_to_num(0.0)
    mask = (db > thresh).float()[None, None]
    mask = F.avg_pool2d(F.pad(mask, (2, 2, 1, 1), mode="replicate"), (3, 5), stride=1)[0, 0]
    gain = 1.0 - prop_decrease * (1.0 - mask)
    y = torch.istft(S * gain, n_fft, hop, window=win, length=t.numel())
    return y.numpy().astype(np.float32)


class SpecCodec(Codec):
    """Audio <-> GANSynth-style spectrogram images, plus the clip labels (instrument families / genres)."""

    name = "spectrogram"

    def __init__(self, sample_rate: int = 16000, clip_seconds: float = 4.0, n_fft: int = 1024, hop: int = 256,
                 frames: int = 256, bins: int = 512, phase: str = "phase", mel: bool = False, n_mels: int = 128,
                 log_floor: float = 1e-5, log_ceiling: float | None = None, labels: list[str] | None = None,
                 context: int = 0, dataset: str = "", griffin_lim_iters: int = 32):
        if phase not in ("phase", "if"):
            raise TunesmithError(f"data.phase must be 'phase' or 'if' (instantaneous frequency), not {phase!r}")
        if bins > n_fft // 2 and not mel:
            raise TunesmithError(f"data.bins {bins} is more than n_fft/2 = {n_fft // 2} frequency bins")
        self.sample_rate, self.clip_seconds = int(sample_rate), float(clip_seconds)
        self.n_fft, self.hop, self.frames, self.bins = int(n_fft), int(hop), int(frames), int(bins)
        self.phase, self.mel, self.n_mels = phase, bool(mel), int(n_mels)
        self.log_floor = float(log_floor)
        # the loudest bin a [-1, 1] signal can give under a Hann window is sum(window) = n_fft / 2 (DC);
        # a full-scale sine gives n_fft / 4
        self.log_ceiling = float(log_ceiling if log_ceiling is not None else n_fft / 2)
        self.labels = list(labels or [])
        self.context, self.dataset, self.griffin_lim_iters = int(context), str(dataset), int(griffin_lim_iters)
        self._melfb = None

    # -- codec protocol
    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "sample_rate": self.sample_rate, "clip_seconds": self.clip_seconds,
                "n_fft": self.n_fft, "hop": self.hop, "frames": self.frames, "bins": self.bins, "phase": self.phase,
                "mel": self.mel, "n_mels": self.n_mels, "log_floor": self.log_floor, "log_ceiling": self.log_ceiling,
                "labels": self.labels, "context": self.context, "dataset": self.dataset,
                "griffin_lim_iters": self.griffin_lim_iters}

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
        if self.mel:
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


def postprocess(x: np.ndarray, sample_rate: int, denoise: bool | float = False) -> np.ndarray:
    """A generated clip made ready to write: NaN-free, optionally spectral-gated (``denoise``: True or the
    gate's ``n_std``), within [-1, 1]."""
    x = np.nan_to_num(np.asarray(x, np.float32))
    if denoise:
        x = spectral_gate(x, sample_rate, n_std=1.5 if denoise is True else float(denoise))
    return np.clip(x, -1.0, 1.0)


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


# ------------------------------------------------------------------------------------ datasets
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
    tr = TensorData(spec=codec.audio_batch_to_spec(xt), label=_label_ids(train, labels))
    va = TensorData(spec=codec.audio_batch_to_spec(xv), label=_label_ids(val, labels)) if val else None
    return DataBundle(tr, va, codec, _stats(clips, train, val, labels, items=len(tr)),
                      reference=_reference(val, xv, codec.sample_rate))


@register_encoding("spectrogram_frames")
def build_spectrogram_frames(dataset: str = "nsynth-mini", families: list[str] | None = None,
                             pitch_range: list[int] | None = None, max_items: int | None = None,
                             val_fraction: float = 0.1, split_seed: int = 0, sample_rate: int = 16000,
                             clip_seconds: float = 4.0, offset: float = 0.0, n_fft: int = 1024, hop: int = 256,
                             frames: int = 256, bins: int = 512, phase: str = "phase", mel: bool = False,
                             log_floor: float = 1e-5, context: int = 16, stride: int = 1) -> DataBundle:
    """Windows of ``context`` spectrogram frames and the frame that follows (the BiLSTM's data). Windows
    never cross clips nor start in the zero padding past the clip's last STFT frame."""
    clips, labels, train, val = _prepare(dataset, families, pitch_range, max_items, val_fraction, split_seed)
    codec = SpecCodec(sample_rate, clip_seconds, n_fft, hop, frames, bins, phase, mel, log_floor=log_floor,
                      labels=labels, context=context, dataset=str(dataset))
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
                   offset: float = 0.0) -> DataBundle:
    """Raw clips ``{"audio": (B, 1, samples) in [-1, 1], "label": (B,)}`` (WaveNet autoencoder, CVAE)."""
    clips, labels, train, val = _prepare(dataset, families, pitch_range, max_items, val_fraction, split_seed)
    codec = WaveCodec(sample_rate, clip_seconds, labels=labels, dataset=str(dataset))
    xt, xv = _load_audio(train, codec, offset), _load_audio(val, codec, offset)
    tr = TensorData(audio=torch.from_numpy(xt)[:, None], label=_label_ids(train, labels))
    va = TensorData(audio=torch.from_numpy(xv)[:, None], label=_label_ids(val, labels)) if val else None
    return DataBundle(tr, va, codec, _stats(clips, train, val, labels, items=len(tr)),
                      reference=_reference(val, xv, codec.sample_rate))
