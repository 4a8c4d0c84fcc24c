"""Audio files and clean-up (seed 003): reading WAV/FLAC/OGG clips and making generated clips safe to write.

The rest of the audio data stage lives beside this module:

* :mod:`tunesmith.data.nsynth` -- the NSynth and GTZAN folder layouts, dataset names (``nsynth-mini``,
  ``nsynth-small:val``), the train/validation split, and the ``samples.json`` convention that says which
  note a generated WAV was asked to be;
* :mod:`tunesmith.data.nsynth_small` -- the ``nsynth-small`` renderer (``tunesmith datasets build nsynth-small``);
* :mod:`tunesmith.data.spectrogram` -- GANSynth-style spectrogram and waveform codecs;
* :mod:`tunesmith.data.audio_encodings` -- the ``spectrogram``, ``spectrogram_frames`` and ``waveform``
  encodings that models train on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import TunesmithError

AUDIO_EXT = {".wav", ".flac", ".ogg", ".aiff", ".aif"}


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


def postprocess(x: np.ndarray, sample_rate: int, denoise: bool | float = False) -> np.ndarray:
    """A generated clip made ready to write: NaN-free, optionally spectral-gated (``denoise``: True or the
    gate's ``n_std``), within [-1, 1]."""
    x = np.nan_to_num(np.asarray(x, np.float32))
    if denoise:
        x = spectral_gate(x, sample_rate, n_std=1.5 if denoise is True else float(denoise))
    return np.clip(x, -1.0, 1.0)
