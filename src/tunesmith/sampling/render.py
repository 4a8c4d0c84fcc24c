"""MIDI -> WAV with FluidSynth and a General MIDI soundfont (Debian's packages); a small numpy synth
only when FluidSynth is missing (with a warning)."""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np

from ..data.midi import read_midi
from ..data.notes import Score
from ..errors import TunesmithError
from ..files import atomic_path

SOUNDFONTS = ["/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2",
              "/usr/share/sounds/sf2/default-GM.sf2", "/usr/share/soundfonts/default.sf2"]


def find_soundfont() -> str | None:
    env = os.environ.get("TUNESMITH_SOUNDFONT")
    for p in ([env] if env else []) + SOUNDFONTS:
        if p and Path(p).is_file():
            return p
    return None


def write_wav(samples: np.ndarray, sr: int, path: str | Path, peak_db: float = -1.0) -> Path:
    """Write float samples as 16-bit WAV, peak-normalised, atomically. A signal below -80 dBFS is written as
    it is: amplifying it by 80 dB or more would turn an idle 1-LSB offset (FluidSynth's output for a MIDI
    file without notes) into a full-scale DC step, harmful on speakers."""
    import soundfile as sf

    path = Path(path)
    x = np.asarray(samples, np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1e-4:
        x = x * (10 ** (peak_db / 20) / peak)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), x, sr, subtype="PCM_16")
    return path


def synth_numpy(score: Score, sr: int = 22050) -> np.ndarray:
    """A plain additive synth (3 harmonics, exponential decay): the fallback when FluidSynth is missing."""
    spb = 60.0 / (score.tempo or 120.0)
    n = int((score.length * spb + 0.5) * sr) + 1
    out = np.zeros(n, np.float32)
    for p, s, d, v in zip(score.pitch, score.start, score.duration, score.velocity):
        a, L = int(s * spb * sr), max(1, int(d * spb * sr))
        t = np.arange(L) / sr
        f = 440.0 * 2 ** ((int(p) - 69) / 12)
        env = np.exp(-3.0 * t) * np.minimum(1, (L - np.arange(L)) / (0.01 * sr))
        tone = sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3))
        out[a:a + L] += (v / 127.0) * env * tone[: len(out) - a]
    return out


def render_midi(midi_path: str | Path, wav_path: str | Path, sample_rate: int = 44100,
                soundfont: str | None = None, gain: float = 0.8) -> Path:
    """Render a MIDI file to WAV. FluidSynth output is peak-normalised (its default level is very quiet)."""
    import soundfile as sf

    from .checks import check_wav_out

    midi_path, wav_path = Path(midi_path), check_wav_out(wav_path)  # a .wav file name in a writable folder
    score = read_midi(midi_path)  # validates the file with a clear message
    if len(score) == 0:  # no notes: silence (FluidSynth's idle output is a constant offset, peak-normalised
        warnings.warn(f"{midi_path} has no notes: writing silence", stacklevel=2)  # to a -1 dBFS DC step)
        return write_wav(np.zeros(int(sample_rate * max(1.0, score.length * 60.0 / (score.tempo or 120.0))),
                                  np.float32), sample_rate, wav_path)
    sf2 = soundfont or find_soundfont()
    exe = shutil.which("fluidsynth")
    if soundfont and not Path(soundfont).is_file():
        raise TunesmithError(f"soundfont not found: {soundfont}")
    if exe and sf2:
        wav_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = wav_path.with_name(f".{wav_path.stem}.fs{os.getpid()}.wav")
        r = subprocess.run([exe, "-ni", "-q", "-g", str(gain), "-r", str(sample_rate), "-F", str(tmp), sf2,
                            str(midi_path)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0 or not tmp.exists():
            raise TunesmithError(f"fluidsynth failed on {midi_path}: {(r.stderr or r.stdout).strip()[:120]}")
        x, sr = sf.read(str(tmp), dtype="float32")
        tmp.unlink()
        return write_wav(x, sr, wav_path)
    warnings.warn("FluidSynth or a General MIDI soundfont is missing (apt-get install fluidsynth "
                  "timgm6mb-soundfont): rendering with a plain sine synth", stacklevel=2)
    return write_wav(synth_numpy(score, 22050), 22050, wav_path)
