"""Diagnose BiLSTM continuations: invert the same generated mel sequences several ways; also the real notes' mels."""
import sys, json, time, numpy as np, torch, soundfile as sf
from pathlib import Path
sys.path.insert(0, "scripts")
from audio_cond_eval import _held_out
from tunesmith.training.checkpoint import load_run
from tunesmith.data.nsynth import write_sample_labels
from tunesmith.data.spectrogram import griffin_lim_audio
from tunesmith.evaluation.audio_metrics import pitch_accuracy
import librosa

run, out, per = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
methods = sys.argv[4].split(",")
model, codec, cfg, _ = load_run(run)
model.eval()
cut = codec.context * codec.hop + codec.n_fft
sel = _held_out(per)

def gen_mel(c):
    spec = codec.audio_to_spec(codec.load(str(c.path)))
    seq = spec.permute(1, 0, 2).reshape(spec.shape[1], -1)[None]
    real = seq.clone()
    s = seq[:, :codec.context]
    total = min(codec.frames, codec.num_samples // codec.hop + 1)
    with torch.no_grad():
        while s.shape[1] < total:
            s = torch.cat([s, model.predict(s[:, -codec.context:]).clamp(-1, 1)[:, None]], 1)
    return s[0].numpy(), real[0, :total].numpy()

def invert(m, how):
    mag = np.exp(codec._unscale(torch.as_tensor(m)).numpy()).T  # (bins, T) mel magnitude
    power = mag ** 2
    fb = codec._mel_basis().numpy()
    length = codec.hop * (m.shape[0] - 1)
    if how.startswith("pinv"):
        it = int(how[4:])
        lin = np.sqrt(np.clip(np.linalg.pinv(fb) @ power, 0, None))
        return griffin_lim_audio(torch.as_tensor(lin, dtype=torch.float32), codec.n_fft, codec.hop, it, length).numpy()
    if how.startswith("nnls"):  # librosa NNLS mel->stft, then librosa fast griffin-lim
        it = int(how[4:])
        lin = librosa.feature.inverse.mel_to_stft(power, sr=codec.sample_rate, n_fft=codec.n_fft, power=2.0)
        return librosa.griffinlim(lin, n_iter=it, hop_length=codec.hop, n_fft=codec.n_fft, length=length,
                                  init=None, momentum=0.99)
    raise SystemExit(how)

rows = []
res = {m: [] for m in methods}
t0 = time.process_time()
gens = []
for c in sel:
    g, r = gen_mel(c)
    gens.append((c, g, r))
print("gen cpu", time.process_time() - t0, file=sys.stderr)
for how in methods:
    for src in (("gen",) if __import__("os").environ.get("GENONLY") else ("gen", "real")):
        d = out / f"{src}_{how}"
        d.mkdir(parents=True, exist_ok=True)
        rows = []
        for c, g, r in gens:
            y = invert(g if src == "gen" else r, how)
            y = y / max(np.abs(y).max(), 1e-9) * 0.9
            sf.write(d / f"{c.name}.wav", y[cut:cut + codec.sample_rate].astype(np.float32), codec.sample_rate)
            rows.append({"file": f"{c.name}.wav", "pitch": c.pitch, "family": c.label})
        write_sample_labels(d, rows)
        pa = pitch_accuracy(d)
        miss = {Path(k).name: (v["found"] and round(v["found"] - v["requested"], 2)) for k, v in pa["per_file"].items() if not v["hit"]}
        print(json.dumps({"src": src, "how": how, "acc": pa["pitch_accuracy"], "n": pa["n_pitch_labelled"],
                          "cents": pa["median_abs_cents"], "miss": miss, "cpu": round(time.process_time() - t0)}), flush=True)
# energy of the generated continuation vs real in the evaluated second (mel frames)
f0, f1 = cut // codec.hop, (cut + codec.sample_rate) // codec.hop
for c, g, r in gens:
    print(c.name, "gen mean", round(float(g[f0:f1].mean()), 3), "real mean", round(float(r[f0:f1].mean()), 3), "gen end", round(float(g[f1:f1+1].mean()),3))
