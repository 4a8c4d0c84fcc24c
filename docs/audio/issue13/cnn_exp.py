"""Small CNN on log-mel for instrument family; train on train notes, report valid + test."""
import sys, json, time, numpy as np, torch, soundfile as sf
from pathlib import Path
torch.set_num_threads(1)
import librosa

N_MELS, HOP = 64, 512

def logmel(x):
    x = np.asarray(x, np.float32); x = x / max(float(np.abs(x).max()), 1e-9)
    S = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=1024, hop_length=HOP, n_mels=N_MELS)
    db = librosa.power_to_db(S + 1e-10, ref=float(S.max()) + 1e-10, top_db=None)
    return (np.maximum(db, -80) / 40 + 1).astype(np.float32)  # [-1, 1]

class Net(torch.nn.Module):
    def __init__(self, n_out, ch=(16, 32, 64, 64), drop=0.3):
        super().__init__()
        layers, c0 = [], 1
        for c in ch:
            layers += [torch.nn.Conv2d(c0, c, 3, padding=1), torch.nn.BatchNorm2d(c), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
            c0 = c
        self.conv = torch.nn.Sequential(*layers)
        f = N_MELS // 2 ** len(ch)
        self.head = torch.nn.Sequential(torch.nn.Dropout(drop), torch.nn.Linear(2 * c0 * f, n_out))
    def forward(self, x):  # (B, mels, T)
        h = self.conv(x[:, None])  # (B, C, F, T')
        h = torch.cat([h.mean(-1), h.amax(-1)], 1).flatten(1)
        return self.head(h)

def augment(x, g):
    B, F, T = x.shape
    out = x.clone()
    for i in range(B):
        s = int(torch.randint(-3, 4, (1,), generator=g))
        if s: out[i] = torch.roll(out[i], s, 0); (out[i, :s].fill_(-1) if s > 0 else out[i, s:].fill_(-1))
        f0 = int(torch.randint(0, F - 8, (1,), generator=g)); out[i, f0:f0 + int(torch.randint(0, 8, (1,), generator=g))] = -1
        t0 = int(torch.randint(0, T - 12, (1,), generator=g)); out[i, :, t0:t0 + int(torch.randint(0, 12, (1,), generator=g))] = -1
        out[i] = out[i] - float(torch.rand(1, generator=g)) * 0.25  # level
    return out.clamp(-1, 1)

def train(X, y, n_out, epochs=15, seed=0, bs=64, lr=2e-3, wd=1e-3, aug=True, **kw):
    torch.manual_seed(seed); g = torch.Generator().manual_seed(seed)
    net = Net(n_out, **kw); opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
    X = torch.as_tensor(X); y = torch.as_tensor(y)
    steps = epochs * ((len(X) + bs - 1) // bs); sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    for ep in range(epochs):
        net.train(); perm = torch.randperm(len(X), generator=g)
        for b in range(0, len(X), bs):
            idx = perm[b:b + bs]; xb = augment(X[idx], g) if aug else X[idx]
            loss = torch.nn.functional.cross_entropy(net(xb), y[idx], label_smoothing=0.1)
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    net.eval()
    return net

def probs(net, X):
    with torch.no_grad():
        return torch.cat([torch.softmax(net(torch.as_tensor(X[i:i + 256])), -1) for i in range(0, len(X), 256)]).numpy()

if __name__ == "__main__":
    cache = Path("runs/i13/mels.npz")
    if not cache.exists():
        from tunesmith.data.nsynth import find_dataset, load_nsynth
        folder, _ = find_dataset("nsynth-small")
        clips = [c for c in load_nsynth(folder) if c.split in ("train", "valid", "test")]
        M = np.stack([logmel(sf.read(c.path, dtype="float32")[0]) for c in clips])
        np.savez(cache, M=M, y=np.array([c.label for c in clips]), split=np.array([c.split for c in clips]), name=np.array([c.name for c in clips]))
    z = np.load(cache); M = z["M"]; labels = sorted(set(z["y"].tolist())); y = np.array([labels.index(v) for v in z["y"]]); sp = z["split"]
    print("mels", M.shape, flush=True)
    cfgs = [json.loads(a) for a in sys.argv[1:]] or [{}]
    for kw in cfgs:
        t0 = time.process_time()
        net = train(M[sp == "train"], y[sp == "train"], len(labels), **kw)
        r = {k: float((probs(net, M[sp == s]).argmax(1) == y[sp == s]).mean()) for k, s in (("train", "train"), ("val", "valid"), ("test", "test"))}
        pv = probs(net, M[sp == "valid"]).argmax(1); yv = y[sp == "valid"]
        rec = {labels[i]: round(float((pv[yv == i] == i).mean()), 2) for i in range(len(labels))}
        print(json.dumps({"kw": kw, **r, "cpu": round(time.process_time() - t0), "val_recall": rec}), flush=True)
        torch.save(net.state_dict(), f"runs/i13/cnn_{abs(hash(json.dumps(kw))) % 10000}.pt")
