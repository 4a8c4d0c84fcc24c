"""CUDA device bugs found without a GPU: tests/simcuda.py simulates a cuda device on the CPU (tensors that
report cuda and refuse to meet CPU tensors as CUDA kernels do), so the code paths `pytest -m gpu` runs --
training steps, logging, checkpoints, sampling -- run here and fail where they would fail on a GPU.

Each test below failed before its fix. `python -m pytest tests/test_device_audit.py -m slow` also runs every
config of configs/ through test_gpu.py's body (train 3 steps, resume to 5, load on CPU, sample) on the
simulated device."""
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FixedBatches, tiny_toml
from simcuda import DeviceMismatch, sim_cuda

from tunesmith.config import TrainConfig
from tunesmith.models import build_model
from tunesmith.training.objectives import make_objective

torch.set_num_threads(1)
CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


# ---------------------------------------------------------------- the simulator itself catches what CUDA refuses
def test_simulated_cuda_refuses_what_cuda_refuses():
    with sim_cuda():
        x = torch.randn(4, 3, device="cuda")
        with pytest.raises(DeviceMismatch):
            x + torch.ones(3)                                  # a CPU tensor with dimensions
        with pytest.raises(DeviceMismatch):
            torch.stack([x.sum(), torch.tensor(1.0)])          # cat/stack refuse even a CPU scalar
        with pytest.raises(TypeError):
            x.numpy()
        with pytest.raises(DeviceMismatch):
            torch.multinomial(torch.ones(2, 5, device="cuda"), 1, generator=torch.Generator().manual_seed(0))
        # what CUDA allows: CPU scalars in pointwise ops, CPU indices, explicit copies
        y = (x * torch.tensor(2.0))[torch.tensor([0, 2])].cpu()
        assert y.shape == (2, 3) and y.device.type == "cpu"
        assert torch.multinomial(torch.ones(2, 5, device="cuda"), 1,
                                 generator=torch.Generator(device="cuda").manual_seed(0)).shape == (2, 1)


def test_simulated_cuda_trains_an_lstm_like_the_cpu():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 5, batch_first=True)
    x = torch.randn(2, 4, 3)
    ref(x)[0].sum().backward()
    with sim_cuda():
        m = torch.nn.LSTM(3, 5, batch_first=True)
        m.load_state_dict(ref.state_dict())
        m = m.to("cuda")
        m(x.to("cuda"))[0].sum().backward()
        g = m.weight_ih_l0.grad.cpu()
    assert torch.allclose(g, ref.weight_ih_l0.grad, atol=1e-6)


# ---------------------------------------------------------------- GANs: logged metrics made on the CPU
GANS = {
    "gan_dense": ({"vocab_size": 20, "seq_len": 100}, dict(latent_dim=16, gen_hidden=[8, 8, 8], disc_hidden=8,
                                                        disc_dense=[8, 8, 8]),
                  lambda g: {"tokens": torch.randint(0, 20, (4, 100), generator=g)}),
    "lstm_gan": ({"seq_len": 100}, dict(latent_dim=4, hidden=8), lambda g: {"tuples": torch.randn(4, 100, 3, generator=g)}),
    "gan_onehot": ({"vocab_size": 20, "seq_len": 100}, dict(latent_dim=8, channels=8),
                   lambda g: {"tokens": torch.randint(0, 20, (4, 100), generator=g)}),
}


@pytest.mark.parametrize("name", sorted(GANS))
def test_gan_logs_stay_on_the_models_device(name):
    """gan_base logged `distinct`/`pairwise` as CPU tensors; the trainer stacks every logged value into one
    tensor per flush, which CUDA refuses (every GAN config failed `pytest -m gpu` at its first flush)."""
    info, kw, batch = GANS[name]
    torch.manual_seed(0)
    with sim_cuda():
        m = build_model(name, info, **kw).to("cuda")
        obj = make_objective(m, TrainConfig(lr=1e-3))
        b = {k: v.to("cuda") for k, v in batch(torch.Generator().manual_seed(1)).items()}
        logs = obj.step(m, m, FixedBatches(b), 0, torch.device("cuda"))
        vals = [v.detach().float() for v in logs.values() if torch.is_tensor(v)]
        assert {str(v.device) for v in vals} == {str(m.device)}
        assert np.isfinite(torch.stack(vals).tolist()).all()


def _tiny_run_config(tmp_path, name="tiny_lstm", model="melody_lstm", model_extra="hidden = 16\ndropout = 0.0",
                     data_extra=""):
    p = tmp_path / f"{name}.toml"
    p.write_text(textwrap.dedent(tiny_toml(name, model, model_extra, data_extra)))
    return p


def test_trainer_moves_a_cpu_metric_to_the_device(tmp_path, monkeypatch):
    """Any model that logs a metric made on the CPU (a float wrapped in torch.tensor) still trains on a GPU:
    the trainer and the validation pass move logged values to the device before stacking them."""
    from tunesmith.models.melody_lstm import MelodyLSTM
    from tunesmith.training import train

    forward = MelodyLSTM.forward

    def with_cpu_metric(self, batch, mode="loss", step=0):
        out = forward(self, batch, mode=mode, step=step)
        return {**out, "cpu_metric": torch.tensor(1.5)}

    monkeypatch.setattr(MelodyLSTM, "forward", with_cpu_metric)
    with sim_cuda():
        s = train(_tiny_run_config(tmp_path), tmp_path / "run", device="cuda", max_steps=2, progress=False)
    assert s["steps"] == 2 and s["val"]["cpu_metric"] == pytest.approx(1.5)


# ---------------------------------------------------------------- cuDNN: no double backward through an RNN
def test_gradient_penalty_of_an_lstm_critic_runs_without_cudnn():
    """WGAN-GP differentiates the critic's input gradient; cuDNN RNNs have no double backward, so on a GPU
    gan_tuples_wgangp (an LSTM critic) failed in its first critic step. The penalty pass of an RNN critic
    now runs with cuDNN off (the simulator has no cuDNN: this checks the flag seen inside the critic's LSTM)."""
    info, kw, batch = GANS["lstm_gan"]
    torch.manual_seed(0)
    m = build_model("lstm_gan", info, **kw, loss="wgan-gp")
    seen = []
    lstm_forward = type(m.critic.lstm).forward

    def spy(self, *a, **k):
        seen.append(torch.backends.cudnn.enabled)
        return lstm_forward(self, *a, **k)

    m.critic.lstm.forward = spy.__get__(m.critic.lstm)
    with torch.backends.cudnn.flags(enabled=True):
        out = m(batch(torch.Generator().manual_seed(1)), mode="critic")
        out["loss"].backward()                       # the double backward of the penalty
    assert seen == [True, True, False]               # real and fake scores on cuDNN, the penalty pass without
    assert torch.isfinite(out["gp"])


# ---------------------------------------------------------------- whole runs on the simulated device
def sim_run(cfg_path, tmp_path, max_steps=2, **sample_opts):
    """test_gpu.py's body, short: train on the simulated cuda device (checkpoint hooks included), load the
    checkpoint on the CPU (every tensor equal), sample on the simulated device."""
    from safetensors.torch import load_file

    from tunesmith.config import load_config
    from tunesmith.sampling.generate import sample_run
    from tunesmith.training import load_run, train

    cfg = load_config(cfg_path)
    run = tmp_path / "run"
    with sim_cuda():
        s = train(cfg, run, device="cuda", max_steps=max_steps, progress=False)
    w = load_file(str(run / "checkpoint" / "model.safetensors"))
    model, *_ = load_run(run, "cpu")
    for k, v in model.state_dict().items():
        assert torch.equal(w[k], v), k
    with sim_cuda():
        paths = sample_run(run, tmp_path / "out", seed=0, device="cuda", **sample_opts)
    assert paths and all(p.stat().st_size > 0 for p in paths)
    return s


def test_conditioned_melody_vae_checkpoints_on_cuda(tmp_path):
    """encode_items (the slider fit at every checkpoint) passed the phrases' CPU labels to label_slots, whose
    torch.where met the model's cuda buffers: melody_vae_4bar_cond(_adv) failed at their first checkpoint."""
    from test_melody_vae_cond import TINY_COND

    p = tmp_path / "tiny_cond.toml"
    p.write_text(textwrap.dedent(TINY_COND))
    sim_run(p, tmp_path, num=2, condition="metre=3/4,mode=minor")


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_runs_on_the_simulated_gpu(config, tmp_path):
    """Every config through test_gpu.py's body (3 steps, checkpoint at 2, resume to 5, CPU reload, sampling)
    on the simulated device, with batches of at most 16 (what is checked is devices, not learning)."""
    from safetensors.torch import load_file

    from tunesmith.config import load_config
    from tunesmith.sampling.generate import sample_run
    from tunesmith.training import load_run, train

    def cfg():
        c = load_config(config)
        c.train.checkpoint_every, c.train.batch_size = 2, min(c.train.batch_size, 16)
        return c

    run = tmp_path / "run"
    with sim_cuda():
        train(cfg(), run, device="cuda", max_steps=3, progress=False)
        assert train(cfg(), run, device="cuda", max_steps=5, resume=True, progress=False)["steps"] == 5
    w = load_file(str(run / "checkpoint" / "model.safetensors"))
    model, *_ = load_run(run, "cpu")
    for k, v in model.state_dict().items():
        assert torch.equal(w[k], v), k
    with sim_cuda():
        paths = sample_run(run, tmp_path / "out", num=1, wav=True, seed=0, device="cuda")
    assert paths and all(p.stat().st_size > 0 for p in paths)


def test_deterministic_training_on_cuda_fixes_the_cublas_workspace(tmp_path, monkeypatch):
    """train.deterministic on a GPU: torch.use_deterministic_algorithms alone leaves cuBLAS nondeterministic
    (with warn_only it only warns) unless CUBLAS_WORKSPACE_CONFIG is set before cuBLAS first runs; the trainer
    sets it (unless the user did) when it trains on CUDA."""
    from tunesmith.config import load_config
    from tunesmith.training import train

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cfg = load_config(_tiny_run_config(tmp_path))
    cfg.train.deterministic = True
    try:
        with sim_cuda():
            train(cfg, tmp_path / "run", device="cuda", max_steps=1, progress=False)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    import os
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") == ":4096:8"


@pytest.mark.parametrize("model,extra", [("melody_lstm", "hidden = 16\ndropout = 0.0\nlabel_dropout = 0.2"),
                                         ("melody_transformer", "d_model = 16\nlayers = 1\nheads = 2\nff = 32\n"
                                                                "max_len = 32\nlabel_dropout = 0.2")])
def test_conditioned_melody_models_sample_with_guidance_on_cuda(model, extra, tmp_path):
    """Sampling options test_gpu.py does not use (a condition, classifier-free guidance, a primer) on the
    simulated device: no CPU tensor meets the model's, no CPU generator draws for it."""
    p = _tiny_run_config(tmp_path, f"tiny_{model}", model, extra, 'condition = ["metre", "mode"]')
    sim_run(p, tmp_path, num=2, condition="metre=3/4,mode=minor", guidance=2.0, primer="60 _ 62 _",
            steps=40)
