import sys, json, numpy as np, torch, glob
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
torch.set_num_threads(1)
from cnn_exp import Net, probs
import clf_exp as C
z = np.load("runs/i13/mels.npz"); M = z["M"]
labels = sorted(set(z["y"].tolist())); y = np.array([labels.index(v) for v in z["y"]]); sp = z["split"]
assert (z["name"] == C.z["name"]).all()
net = Net(len(labels)); net.load_state_dict(torch.load(glob.glob("runs/i13/cnn_*.pt")[0])); net.eval()
Pc = probs(net, M)
X = C.feats(["base"]); tr = sp == "train"
f = C.train(X[tr], C.y[tr]); Pm = f(X)
for w in (0.0, 0.3, 0.5, 0.7, 1.0):
    P = w * Pc + (1 - w) * Pm
    print(w, {s: round(float((P[sp == s].argmax(1) == y[sp == s]).mean()), 3) for s in ("train", "valid", "test")})
