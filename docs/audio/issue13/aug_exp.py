import sys, json, numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import clf_exp as C
A = np.load("runs/i13/aug_feats.npz")
X = C.feats(["base"]); tr = C.split == "train"
res = []
for keys in ([], ["s-2"], ["s+2"], ["s-2", "s+2"]):
    Xt = np.concatenate([X[tr]] + [A[k] for k in keys]); yt = np.concatenate([C.y[tr]] * (1 + len(keys)))
    for seed in (0, 1):
        f = C.train(Xt, yt, seed=seed)
        r = {s: round(float((f(X[C.split == s]).argmax(1) == C.y[C.split == s]).mean()), 3) for s in ("valid", "test")}
        print(keys, seed, r, flush=True)
