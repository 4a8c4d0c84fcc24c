"""Which feature groups does analysis + re-synthesis lose? Real training notes' features with one group replaced by the re-synthesised note's."""
import json, sys, numpy as np, soundfile as sf, os
from pathlib import Path
from tunesmith.data.harmonic import HarmonicCodec
from tunesmith.evaluation.audio_family import reference_model, clip_features
from tunesmith.data.nsynth import find_dataset; D = find_dataset("nsynth-small")[0]; meta = json.load(open(D / "examples.json"))
items = sorted((k, m) for k, m in meta.items() if m["split"] == "train")
rng = np.random.default_rng(0); items = [items[i] for i in rng.choice(len(items), 66, replace=False)]
clf = reference_model("nsynth-small")["classifier"]
variants = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {"v0": {}}
G = {"logmel": (0, 64), "mfcc_mean": (64, 84), "mfcc_std": (84, 104), "dmfcc_std": (104, 124), "env": (124, 140), "cent_flat": (140, 144), "harm": (144, 162)}
import torch, math
class Codec2(HarmonicCodec):
    def __init__(self, noise_mode="white", noise_gain=1.0, gate_db=None, **kw):
        super().__init__(**kw); self.noise_mode, self.noise_gain, self.gate_db = noise_mode, noise_gain, gate_db
    def synthesize(self, img, pitch, seed=0):
        if self.gate_db is not None:
            v = torch.as_tensor(np.asarray(img, np.float32)).clone(); H = self.harmonics
            f0 = 440 * 2 ** ((pitch - 69) / 12); e = self._band_edges().numpy()
            fb = np.arange(1, H + 1) * f0 / self.sample_rate * self.n_fft
            band = np.clip(np.searchsorted(e, fb, side="right") - 1, 0, self.noise_bands - 1)
            thr = v[H:][torch.as_tensor(band)] + self.gate_db / (-self.floor_db) * 2
            v[:H] = torch.where(v[:H] < thr, torch.full_like(v[:H], -1.0), v[:H])
            img = v
            if self.noise_mode == "white" and self.noise_gain == 1.0:
                return super().synthesize(img, pitch, seed)
        if self.noise_mode == "white" and self.noise_gain == 1.0:
            return super().synthesize(img, pitch, seed)
        v = torch.as_tensor(np.asarray(img, np.float32)).clone()
        H = self.harmonics
        harm = v.clone(); harm[H:] = -1
        y = super().synthesize(harm, pitch, seed)
        noise = self._from_unit(v[H:]) * self.noise_gain
        e = self._band_edges(); n = self.num_samples
        gain = torch.zeros(self.n_fft // 2 + 1, v.shape[1])
        for b in range(self.noise_bands):
            gain[e[b]:max(e[b + 1], e[b] + 1)] = noise[b]
        gen = torch.Generator().manual_seed(int(seed) + 7)
        win = torch.hann_window(self.n_fft)
        if self.noise_mode == "phase":
            W = torch.polar(torch.ones(gain.shape[0], v.shape[1]), torch.rand(gain.shape[0], v.shape[1], generator=gen) * 2 * math.pi)
        else:
            W = torch.stft(torch.randn(n, generator=gen), self.n_fft, self.hop, window=win, return_complex=True)
            W = W / W.abs().median().clamp_min(1e-8)
        T = min(W.shape[1], gain.shape[1])
        return y + torch.istft(W[:, :T] * gain[:, :T] * (self.n_fft / 4), self.n_fft, self.hop, window=win, length=n).numpy()
for name, kw in variants.items():
    codec = Codec2(**kw)
    R, S, y = [], [], []
    for i, (k, m) in enumerate(items):
        x = sf.read(D / "audio" / f"{k}.wav", dtype="float32")[0]; x = x / max(1e-8, np.abs(x).max())
        yv = codec.synthesize(codec.analyze(x, m["pitch"]), m["pitch"], seed=i); yv = yv / max(1e-6, np.abs(yv).max()) * 0.9
        R.append(clip_features(x)[0]); S.append(clip_features(yv)[0]); y.append(m["instrument_family_str"])
    R, S, y = np.stack(R), np.stack(S), np.array(y)
    acc = lambda F: float((np.array(clf.predict(F)) == y).mean())
    out = {"variant": name, "real": acc(R), "resynth": acc(S)}
    for g, (a, b) in G.items():
        F = R.copy(); F[:, a:b] = S[:, a:b]; out["swap_" + g] = round(acc(F), 3)
    print(json.dumps(out), flush=True)
    np.savez(f"runs/i13/swap_{name}.npz", R=R, S=S, y=y)
