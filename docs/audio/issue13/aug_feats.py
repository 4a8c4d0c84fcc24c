"""Base (162) features of the training notes played faster/slower (tape-speed resampling: pitch, formants and duration move together)."""
import sys, numpy as np, soundfile as sf, time, librosa
from tunesmith.evaluation.audio_family import clip_features
from tunesmith.data.nsynth import find_dataset, load_nsynth
folder, _ = find_dataset("nsynth-small")
clips = [c for c in load_nsynth(folder) if c.split in ("train", "valid", "test")]
semis = [float(v) for v in sys.argv[1].split(",")]
t0 = time.process_time(); out = {}
for s in semis:
    F = []
    for i, c in enumerate(clips):
        if c.split != "train":
            continue
        x = sf.read(c.path, dtype="float32")[0]
        # play 2^(s/12) times faster: resample to a lower rate, read at 16 kHz
        y = librosa.resample(x, orig_sr=16000, target_sr=int(round(16000 / 2 ** (s / 12))), res_type="soxr_hq")
        F.append(clip_features(y[:64000])[0])
    out[f"s{s:+g}"] = np.stack(F); print(s, time.process_time() - t0, flush=True)
np.savez("runs/i13/aug_feats.npz", **out)
