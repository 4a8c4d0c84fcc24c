"""Fine-tune an unconditioned time-step model into a conditioned one (issue 16, item 3).

    python scripts/finetune_conditioned.py CONFIG BASE OUT      e.g.
    python scripts/finetune_conditioned.py configs/essen_transformer_metre.toml zoo:essen-transformer runs/zoo/essen-transformer-metre

CONFIG must describe the same model as BASE with ``data.condition`` set: its vocabulary is BASE's plus the label
tokens (appended at the end, so every other id is unchanged). The new run starts from BASE's weights -- the
label tokens' embedding rows (and output biases) start at the mean of the others and the labels' per-step
embedding (``cond.*``, new in the conditioned model) at zero -- and is trained with
CONFIG's [train] section by the ordinary trainer (``FINETUNE_MAX_STEPS`` caps the steps), into OUT (a normal run directory: `tunesmith sample`,
`tunesmith score` and `--resume` work on it).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(config: str, base: str, out: str, max_steps: int | None = None) -> dict:
    from tunesmith.config import load_config
    from tunesmith.errors import TunesmithError
    from tunesmith.training.checkpoint import load_run
    from tunesmith.training.trainer import Trainer

    cfg = load_config(config)
    base_model, base_codec, base_cfg, _ = load_run(base, "cpu")
    cond_keys = {"label_dropout", "label_dim", "bar_positions", "metre_positions"}   # conditioning settings the base lacks
    if {k: v for k, v in base_cfg.model.items() if k not in cond_keys} != \
            {k: v for k, v in cfg.model.items() if k not in cond_keys}:
        raise TunesmithError(f"[model] of {config} differs from {base}'s: fine-tuning needs the same network")
    if max_steps is not None:
        cfg.train.max_steps = int(max_steps)
    tr = Trainer(cfg, Path(out), device="cpu", resume=False, progress=False)
    vocab, old = tr.bundle.codec.vocab, base_codec.vocab
    if vocab[:len(old)] != old:
        raise TunesmithError(f"the vocabulary of {config} does not start with {base}'s: same data settings needed")
    src, dst = base_model.state_dict(), tr.model.state_dict()
    with torch.no_grad():
        for k, v in dst.items():
            if k not in src and k.startswith("cond."):   # the labels' embedding: starts at zero (no effect)
                continue
            s = src[k].to(v.dtype)
            if s.shape == v.shape:
                v.copy_(s)
            elif s.shape[1:] == v.shape[1:] and s.shape[0] == len(old) and v.shape[0] == len(vocab):
                v[:len(old)].copy_(s)
                v[len(old):] = s.mean(0)
            else:
                raise TunesmithError(f"weight {k}: {tuple(s.shape)} in {base}, {tuple(v.shape)} in the new model")
    print(f"fine-tuning from {base}: {len(vocab) - len(old)} label tokens added "
          f"({', '.join(vocab[len(old):])})", file=sys.stderr)
    return tr.run()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    import os

    main(*sys.argv[1:], max_steps=int(os.environ["FINETUNE_MAX_STEPS"]) if os.environ.get("FINETUNE_MAX_STEPS") else None)
