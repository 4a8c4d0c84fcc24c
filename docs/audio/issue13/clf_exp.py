import sys, json, numpy as np, torch, itertools, time
torch.set_num_threads(1)
z = np.load(sys.argv[1])
labels = sorted(set(z["y"].tolist()))
y = np.array([labels.index(v) for v in z["y"]]); split = z["split"]; inst = z["inst"]
GROUPS = ["base", "mel_std", "contrast", "env_fine", "harm", "misc"]

def train(Xt, yt, hidden=64, epochs=400, wd=1e-3, drop=0.2, noise=0.05, seed=0, lr=3e-3):
    mean, std = Xt.mean(0), Xt.std(0) + 1e-6
    torch.manual_seed(seed)
    if hidden:
        net = torch.nn.Sequential(torch.nn.Linear(Xt.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(drop), torch.nn.Linear(hidden, len(labels)))
    else:
        net = torch.nn.Sequential(torch.nn.Dropout(drop), torch.nn.Linear(Xt.shape[1], len(labels)))
    xt = torch.as_tensor((Xt - mean) / std, dtype=torch.float32); ytt = torch.as_tensor(yt)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=wd)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train(); loss = torch.nn.functional.cross_entropy(net(xt + noise * torch.randn(xt.shape, generator=g)), ytt)
        opt.zero_grad(); loss.backward(); opt.step()
    net.eval()
    def f(X):
        with torch.no_grad():
            return torch.softmax(net(torch.as_tensor((X - mean) / std, dtype=torch.float32)), -1).numpy()
    return f

def feats(groups):
    return np.concatenate([z[g].reshape(len(y), -1) for g in groups], 1).astype(np.float32)

tr = split == "train"
# grouped CV over training instruments: fold k holds out the k-th program (sorted) of each family
fold = np.full(len(y), -1)
for f in labels:
    progs = sorted(set(inst[tr & (z["y"] == f)].tolist()))
    for k, p in enumerate(progs):
        fold[tr & (inst == p)] = k

def evaluate(groups, seeds=(0,), **kw):
    X = feats(groups)
    cv = []
    for k in range(3):
        a, b = tr & (fold != k), tr & (fold == k)
        P = sum(train(X[a], y[a], seed=s, **kw)(X[b]) for s in seeds)
        cv.append((P.argmax(1) == y[b]).mean())
    fs = [train(X[tr], y[tr], seed=s, **kw) for s in seeds]
    res = {}
    for name, m in (("val", split == "valid"), ("test", split == "test")):
        P = sum(f(X[m]) for f in fs); res[name] = float((P.argmax(1) == y[m]).mean())
    return {"groups": "+".join(groups), "kw": kw, "seeds": len(seeds), "cv": round(float(np.mean(cv)), 3), **{k: round(v, 3) for k, v in res.items()}}

if __name__ == "__main__":
    mode = sys.argv[2]
    t0 = time.process_time()
    if mode == "groups":
        print(json.dumps(evaluate(["base"])), flush=True)
        for g in GROUPS[1:]:
            print(json.dumps(evaluate(["base", g])), flush=True)
        print(json.dumps(evaluate(GROUPS)), flush=True)
        print(json.dumps(evaluate(GROUPS[1:])), flush=True)
    elif mode == "hyper":
        gs = sys.argv[3].split("+")
        for kw in [dict(), dict(hidden=128), dict(hidden=0), dict(wd=1e-2), dict(drop=0.5), dict(noise=0.2), dict(epochs=200), dict(hidden=128, drop=0.5, noise=0.2)]:
            print(json.dumps(evaluate(gs, **kw)), flush=True)
    print("cpu", time.process_time() - t0)
