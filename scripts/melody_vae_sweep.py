"""Melody-VAE experiments at equal CPU time (docs/autoencoders.md, "configurations tried").

    OMP_NUM_THREADS=1 python scripts/melody_vae_sweep.py NAME CONFIG CPU_SECONDS [section.key=JSON ...]

Trains CONFIG's model (Adam, gradient clip 1, the config's batch size and learning rate; overrides such as
``model.beta=0.02``, ``model.word_dropout=0.6``, ``train.lr=0.002``, ``train.lr_final=0.0003`` (exponential
decay over the CPU budget), ``train.eval_every=60`` CPU seconds, ``train.init="runs/mv4"`` to start from a run's weights) until the process has used CPU_SECONDS of
CPU time, and every ``eval_every`` CPU seconds writes one JSON line to runs/mvx/NAME.jsonl: the step, CPU and
wall seconds, onset F1 and token accuracy of free-running argmax decoding from the posterior mean on the
held-out phrases (the measure of ``tunesmith sample RUN --reconstruct essen-erk:val``), and the
teacher-forced accuracy, reconstruction loss and KL. The weights go to runs/mvx/NAME.pt. The CPU time of
evaluation counts in the budget, so runs compare at equal CPU time."""
import json, sys, time, math, os
import numpy as np, torch
torch.set_num_threads(1)
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OUT = ROOT / "runs" / "mvx"
OUT.mkdir(parents=True, exist_ok=True)
from tunesmith.config import load_config
from tunesmith.data.base import build_data
from tunesmith.models import build_model
from tunesmith.sampling.reconstruct import onset_f1_counts

name, cfgp, budget = sys.argv[1], sys.argv[2], float(sys.argv[3])
cfg = load_config(cfgp)
over = {}
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    over[k] = json.loads(v)
model_kw = {k: v for k, v in cfg.model.items() if k != "name"}
tr = dict(lr=cfg.train.lr, batch_size=cfg.train.batch_size, eval_every=120.0, lr_final=None, seed=0, init=None)
data_kw = dict(cfg.data)
for k, v in over.items():
    sec, key = k.split(".")
    {"model": model_kw, "train": tr, "data": data_kw}[sec][key] = v
torch.manual_seed(tr["seed"]); np.random.seed(tr["seed"])
b = build_data(**data_kw)
model = build_model(cfg.model["name"], b.codec.model_info(), **model_kw)
if tr["init"]:  # continue from a trained run's weights (fresh optimizer)
    from tunesmith.training.checkpoint import checkpoint_dir, load_weights
    load_weights(model, checkpoint_dir(tr["init"]) / "model.safetensors")
opt = torch.optim.Adam(model.parameters(), lr=tr["lr"])
pt = b.codec.pitch_table()
val = b.val.batch(torch.arange(len(b.val)))["tokens"]
g = torch.Generator().manual_seed(tr["seed"])
log = open(OUT / f"{name}.jsonl", "w")
print(json.dumps({"name": name, "over": over, "params": sum(p.numel() for p in model.parameters())}), file=log, flush=True)

def evaluate(step, cpu):
    model.eval()
    with torch.no_grad():
        out = model({"tokens": val}, step=step)
        mu, lv = model.encode(val)
        y = model.decode_ids(mu).numpy()
    model.train()
    m, na, nb = onset_f1_counts(val.numpy(), y, pt)
    r = {"step": step, "cpu": round(cpu, 1), "wall": round(time.time() - t0, 1), "f1": round(2 * m / (na + nb), 4),
         "tok_free": round(float((val.numpy() == y).mean()), 4), "tf_acc": round(float(out["acc"]), 4),
         "rec": round(float(out["recon"]), 2), "kl": round(float(out["kl"]), 1), "lr": opt.param_groups[0]["lr"]}
    print(json.dumps(r), file=log, flush=True)
    return r

t0 = time.time(); c0 = time.process_time()
step, next_eval, n = 0, tr["eval_every"], len(b.train)
model.train()
while True:
    cpu = time.process_time() - c0
    if tr["lr_final"] is not None:  # exponential decay over the CPU budget
        for gp in opt.param_groups:
            gp["lr"] = tr["lr"] * (tr["lr_final"] / tr["lr"]) ** min(1.0, cpu / budget)
    if cpu >= next_eval or cpu >= budget:
        r = evaluate(step, cpu)
        next_eval += tr["eval_every"]
        if cpu >= budget:
            break
    idx = torch.randint(0, n, (tr["batch_size"],), generator=g)
    out = model(b.train.batch(idx), step=step)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    step += 1
torch.save(model.state_dict(), OUT / f"{name}.pt")
