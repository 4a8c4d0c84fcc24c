"""Seed 001's tuple LSTM-GAN remedies: minibatch discrimination (configs/gan_tuples_minibatch.toml)."""
from pathlib import Path

import pytest
import torch

from tunesmith.config import load_config
from tunesmith.errors import TunesmithError
from tunesmith.models import build_model
from tunesmith.models.lstm_gan import MinibatchDiscrimination

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def test_minibatch_features_by_hand():
    mbd = MinibatchDiscrimination(2, kernels=1, dims=1)
    with torch.no_grad():
        mbd.T.copy_(torch.tensor([[1.0], [0.0]]))  # M_i = first feature
    f = torch.tensor([[0.0, 5.0], [0.0, -1.0], [2.0, 0.0]])
    o = mbd(f)[:, 2]
    # item 0: exp(-|0-0|) + exp(-|0-2|) = 1 + e^-2; item 2: 2 e^-2 (its own exp(0) is not counted)
    e2 = float(torch.exp(torch.tensor(-2.0)))
    assert o.tolist() == pytest.approx([1 + e2, 1 + e2, 2 * e2])


def test_a_collapsed_batch_is_visible_to_the_discriminator():
    """Identical items get the largest closeness (B kernels x (N-1) others); varied ones far less."""
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(8, kernels=4, dims=3)
    same = mbd(torch.ones(6, 8))[:, 8:]
    varied = mbd(torch.randn(6, 8) * 10)[:, 8:]
    assert torch.allclose(same, torch.full_like(same, 5.0))
    assert float(varied.detach().mean()) < 1.0


def test_minibatch_config_builds_and_scores_batches():
    cfg = load_config(ROOT / "configs" / "gan_tuples_minibatch.toml")
    kw = {k: v for k, v in cfg.model.items() if k not in ("name", "hidden")}
    m = build_model("lstm_gan", {"seq_len": 20}, hidden=8, **kw)
    assert m.critic.mbd is not None and m.critic.mbd.kernels == 50
    x = m.fake(4)
    assert m.critic_score(x).shape == (4,)
    out = m({"tuples": torch.randn(4, 20, 3)}, mode="critic")
    out["loss"].backward()
    assert m.critic.mbd.T.grad is not None and float(m.critic.mbd.T.grad.abs().sum()) > 0


def test_minibatch_with_gradient_penalty_is_refused():
    with pytest.raises(TunesmithError, match="minibatch_kernels"):
        build_model("lstm_gan", {"seq_len": 20}, hidden=8, loss="wgan-gp", minibatch_kernels=4)
