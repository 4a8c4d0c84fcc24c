"""Extract candidate per-note features for every nsynth-small note: the current 162 + extra groups."""
import sys, json, time, numpy as np
from pathlib import Path
import librosa, soundfile as sf
from tunesmith.evaluation.audio_family import clip_features
from tunesmith.data.nsynth import find_dataset, load_nsynth

SR = 16000
T_MS = [0, 5, 10, 20, 40, 80, 160, 320, 640, 1280, 2000, 2800, 3050, 3200, 3500]

def extra(x):
    x = np.asarray(x, np.float32); x = x / max(float(np.abs(x).max()), 1e-9)
    out = {}
    S = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=1024, hop_length=256, n_mels=64)
    lm = librosa.power_to_db(S + 1e-10, ref=1.0, top_db=None)
    loud = lm.max(0) > lm.max() - 60
    if not loud.any(): loud[:] = True
    out["mel_std"] = lm[:, loud].std(1) / 10
    Sm = np.abs(librosa.stft(x, n_fft=1024, hop_length=256))
    con = librosa.feature.spectral_contrast(S=Sm, sr=SR)
    out["contrast"] = np.concatenate([con[:, loud].mean(1), con[:, loud].std(1)]) / 10
    # fine envelope (4 ms hop) from the onset
    rms = librosa.feature.rms(y=x, frame_length=256, hop_length=64)[0]
    db = 20 * np.log10(np.maximum(rms, 1e-5) / max(float(rms.max()), 1e-5))
    on = int(np.argmax(db > -40))
    t = (np.arange(len(db)) - on) * 64 / SR * 1000
    env = np.interp(T_MS, t, db, left=db[0], right=db[-1])
    pk = int(np.argmax(db))
    att = (np.argmax(db[on:] > -3) if (db[on:] > -3).any() else 0) * 64 / SR
    def slope(a, b):
        m = (t >= a) & (t < b)
        return np.polyfit(t[m] / 1000, db[m], 1)[0] if m.sum() > 3 else 0.0
    am = (t >= 400) & (t < 2800)
    if am.sum() > 10:
        seg = db[am]; tr = np.polyval(np.polyfit(np.arange(len(seg)), seg, 2), np.arange(len(seg)))
        amd = float(np.std(seg - tr))
    else:
        amd = 0.0
    out["env_fine"] = np.concatenate([env / 20, [np.log(att + 1e-3), (pk - on) * 64 / SR, slope(0, 100) / 100,
                                      slope(100, 1000) / 20, slope(1000, 2900) / 20, slope(3050, 3600) / 100, amd]])
    # harmonics: levels over 24, attack vs sustain, inharmonicity, subharmonic, vibrato
    S2 = np.abs(librosa.stft(x, n_fft=4096, hop_length=512))
    en = S2.sum(0); ld = en > 0.05 * max(float(en.max()), 1e-12)
    f0s = librosa.yin(x, fmin=30, fmax=2000, sr=SR, frame_length=4096, hop_length=512)[: S2.shape[1]]
    H = 24
    if ld.sum() >= 3:
        f = float(np.median(f0s[ld[: len(f0s)]]))
        cents = 1200 * np.log2(f0s[ld[: len(f0s)]] / f)
        vib = float(np.std(np.clip(cents, -100, 100)))
        amps, dev = [], []
        frq = np.arange(S2.shape[0]) * SR / 4096
        Smean = S2[:, ld].mean(1)
        for k in list(range(1, H + 1)):
            b = k * f * 4096 / SR
            lo, hi = int(max(0, np.floor(b - 0.03 * b - 2))), int(min(S2.shape[0] - 1, np.ceil(b + 0.03 * b + 2)))
            if hi <= lo + 1 or b >= S2.shape[0] - 2:
                amps.append(np.full(S2.shape[1], 1e-6)); dev.append(0.0); continue
            j = lo + int(np.argmax(Smean[lo:hi + 1]))
            amps.append(S2[j]); dev.append(1200 * np.log2(max(frq[j], 1) / (k * f)) / 100 if k <= 12 else 0)
        A = np.array(amps) + 1e-6
        onf = int(np.argmax(ld))
        att_l = 20 * np.log10(A[:, onf:onf + 3].mean(1) / A[:, onf:onf + 3].max())
        sus = ld.copy(); sus[: onf + 6] = False
        sus_l = 20 * np.log10(A[:, sus].mean(1) / A[:, sus].max()) if sus.sum() > 2 else att_l
        bsub = int(round(0.5 * f * 4096 / SR)); b1 = int(round(f * 4096 / SR))
        sub = np.log(Smean[max(bsub - 2, 0):bsub + 3].max() + 1e-6) - np.log(Smean[max(b1 - 2, 0):b1 + 3].max() + 1e-6)
        b15 = int(round(1.5 * f * 4096 / SR))
        mid = np.log(Smean[max(b15 - 2, 0):b15 + 3].max() + 1e-6) - np.log(Smean[max(b1 - 2, 0):b1 + 3].max() + 1e-6)
        # harmonic spectral centroid (in harmonic numbers) and its change over time
        hc = (np.arange(1, H + 1)[:, None] * A[:, ld]).sum(0) / A[:, ld].sum(0)
        out["harm"] = np.concatenate([np.maximum(att_l, -80) / 20, np.maximum(sus_l, -80) / 20, np.clip(dev[:12], -1, 1),
                                      [sub / 5, mid / 5, vib / 50, np.log(hc.mean()), np.log(hc[:3].mean() / hc.mean())]])
    else:
        out["harm"] = np.zeros(2 * H + 12 + 5)
    flux = librosa.onset.onset_strength(S=lm, sr=SR)
    zcr = librosa.feature.zero_crossing_rate(x, frame_length=1024, hop_length=256)[0]
    roll = librosa.feature.spectral_rolloff(S=Sm, sr=SR)[0]
    bw = librosa.feature.spectral_bandwidth(S=Sm, sr=SR)[0]
    out["misc"] = np.array([np.log(flux[loud].mean() + 1e-3), np.log(flux[loud].std() + 1e-3), np.log(zcr[loud].mean() + 1e-4),
                            np.log(roll[loud].mean() + 1), np.log(roll[loud].std() + 1), np.log(bw[loud].mean() + 1)])
    return {k: np.nan_to_num(np.asarray(v, np.float32)) for k, v in out.items()}

if __name__ == "__main__":
    folder, _ = find_dataset("nsynth-small")
    clips = [c for c in load_nsynth(folder) if c.split in ("train", "valid", "test")]
    if len(sys.argv) > 2: clips = clips[:: int(sys.argv[2])]
    t0 = time.process_time()
    base, groups = [], {}
    for i, c in enumerate(clips):
        x = sf.read(c.path, dtype="float32")[0]
        base.append(clip_features(x)[0])
        for k, v in extra(x).items(): groups.setdefault(k, []).append(v)
        if i % 200 == 0: print(i, round(time.process_time() - t0, 1), flush=True)
    np.savez(sys.argv[1], base=np.stack(base), **{k: np.stack(v) for k, v in groups.items()},
             y=np.array([c.label for c in clips]), split=np.array([c.split for c in clips]),
             inst=np.array([c.instrument for c in clips]), pitch=np.array([c.pitch for c in clips]),
             name=np.array([c.name for c in clips]))
    print("cpu", time.process_time() - t0)
