"""A spectrogram picture beside each generated WAV (``sample_000.png``): log magnitude in dB over time and
frequency, with the waveform above it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_spectrogram_png(audio, path: str | os.PathLike, n_fft: int = 1024, hop: int = 256,
                         title: str | None = None) -> Path:
    """Write ``audio`` (a :class:`~tunesmith.models.base.Audio`, or ``(samples, sample_rate)``) as a PNG."""
    import torch

    from ..files import pyplot, save_figure

    plt = pyplot()

    if isinstance(audio, tuple):
        x, sr, label = np.asarray(audio[0], np.float32), int(audio[1]), ""
    else:
        x, sr, label = np.asarray(audio.samples, np.float32), int(audio.sample_rate), audio.label
    path = Path(path)
    n_fft = min(n_fft, max(16, 2 ** int(np.log2(max(len(x), 16)))))
    hop = min(hop, n_fft // 4)
    S = torch.stft(torch.from_numpy(np.pad(x, (0, max(0, n_fft - len(x))))), n_fft, hop,
                   window=torch.hann_window(n_fft), return_complex=True).abs().numpy()
    db = 20 * np.log10(S / max(float(S.max()), 1e-10) + 1e-10)
    fig, (a0, a1) = plt.subplots(2, 1, figsize=(7, 4.2), gridspec_kw={"height_ratios": [1, 3]}, sharex=True)
    t = np.arange(len(x)) / sr
    a0.plot(t, x, lw=0.3, color="0.2")
    a0.set_ylabel("amplitude")
    a0.set_ylim(-1.05, 1.05)
    im = a1.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                   extent=[0, len(x) / sr, 0, sr / 2])
    a1.set_xlabel("time (s)")
    a1.set_ylabel("frequency (Hz)")
    fig.colorbar(im, ax=[a0, a1], label="dB", fraction=0.04)
    a0.set_title(title if title is not None else (label or path.stem), fontsize=9)
    return save_figure(fig, path)
