"""Checkpoints of models whose weights share storage (issue 10).

On a GPU, cuDNN keeps an ``nn.LSTM``'s weights as views into one flat buffer, and
``safetensors.torch.save_model`` refuses them ("None is covering the entire storage"). These tests make the
same layout on CPU and prove that checkpoints are written and read back exactly; tied weights too, and files
written the old way (``save_model`` drops one name of a tied pair) still load.
"""
import pytest
import torch
from safetensors.torch import load_file, save_model

from tunesmith.config import load_config
from tunesmith.training import checkpoint as ckpt
from tunesmith.training import load_run, train


def flatten_like_cudnn(module: torch.nn.Module) -> torch.Tensor:
    """Make every parameter of ``module`` a view into one flat tensor, as cuDNN does for an LSTM."""
    params = list(module.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    off = 0
    for p in params:
        n = p.numel()
        p.data = flat[off:off + n].view_as(p)
        off += n
    return flat


def _lstm_model():
    from tunesmith.models import build_model

    torch.manual_seed(0)
    return build_model("melody_lstm", {"vocab_size": 12, "delimiter_id": 0, "target": "all"}, hidden=16,
                       dropout=0.0)


def test_flat_lstm_buffer_reproduces_the_gpu_failure_and_is_saved(tmp_path):
    model = _lstm_model()
    flatten_like_cudnn(model.lstm)
    # the failure users saw on CUDA, reproduced on CPU
    with pytest.raises(RuntimeError, match="covering the entire storage"):
        save_model(model, str(tmp_path / "old_way.safetensors"))
    ckpt.save_weights(model, tmp_path / "w.safetensors")
    saved = load_file(str(tmp_path / "w.safetensors"))
    assert set(saved) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(saved[k], v), k
    # and loaded back into a model whose weights are again views into a flat buffer
    other = _lstm_model()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    flat = flatten_like_cudnn(other.lstm)
    ckpt.load_weights(other, tmp_path / "w.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(other.state_dict()[k], v), k
    # the values went into the flat buffer itself (what cuDNN reads)
    assert torch.equal(flat[:model.lstm.weight_ih_l0.numel()], model.lstm.weight_ih_l0.detach().reshape(-1))


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(7, 5)
        self.head = torch.nn.Linear(5, 7, bias=False)
        self.head.weight = self.emb.weight


def test_tied_weights_round_trip_and_old_files_still_load(tmp_path):
    torch.manual_seed(1)
    m = Tied()
    ckpt.save_weights(m, tmp_path / "new.safetensors")
    assert set(load_file(str(tmp_path / "new.safetensors"))) == {"emb.weight", "head.weight"}
    save_model(m, str(tmp_path / "old.safetensors"))          # the format of runs written before
    assert len(load_file(str(tmp_path / "old.safetensors"))) == 1
    for f in ("new.safetensors", "old.safetensors"):
        n = Tied()
        ckpt.load_weights(n, tmp_path / f)
        assert torch.equal(n.emb.weight, m.emb.weight) and n.head.weight is n.emb.weight
    # a genuinely missing tensor is still an error
    class Untied(Tied):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(5, 7, bias=False)
    with pytest.raises(RuntimeError, match="missing"):
        ckpt.load_weights(Untied(), tmp_path / "old.safetensors")


def test_training_with_a_flat_lstm_buffer_checkpoints_and_resumes(tiny_config, tmp_path, monkeypatch):
    """The whole trainer path (checkpoint, resume, load_run) with cuDNN-style weights."""
    from tunesmith.training import trainer

    real = trainer.build_model

    def build_flat(*a, **k):
        m = real(*a, **k)
        flatten_like_cudnn(m.lstm)
        return m

    monkeypatch.setattr(trainer, "build_model", build_flat)
    train(tiny_config, tmp_path / "r", device="cpu", max_steps=4, progress=False)
    train(tiny_config, tmp_path / "r", device="cpu", max_steps=6, resume=True, progress=False)
    model, codec, cfg, meta = load_run(tmp_path / "r")
    assert meta["step"] == 6
    w = load_file(str(tmp_path / "r" / "checkpoint" / "model.safetensors"))
    for k, v in model.state_dict().items():
        assert torch.equal(w[k], v), k
