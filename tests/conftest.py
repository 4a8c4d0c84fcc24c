import os
import socket
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "tunesmith" / "numba"))

TINY_TEMPLATE = """
name = "{name}"
[data]
encoding = "timestep"
dataset = "essen-small"
seq_len = 16
val_fraction = 0.2
{data_extra}
[model]
name = "{model}"
{model_extra}
[train]
epochs = 1
batch_size = 8
lr = 0.01
log_every = 5
checkpoint_every = 1000
seed = 0
num_threads = 1
[sample]
temperature = 1.0
steps = 32
"""


def tiny_toml(name: str = "tiny_lstm", model: str = "melody_lstm", model_extra: str = "hidden = 32\ndropout = 0.0",
              data_extra: str = "") -> str:
    """The tiny time-step config the tests train (one epoch of essen-small, 16-step windows)."""
    return TINY_TEMPLATE.format(name=name, model=model, model_extra=model_extra, data_extra=data_extra)


TINY_LSTM = tiny_toml()


TINY_TF_TEMPLATE = """
name = "tiny_tf"
[data]
encoding = "timestep"
dataset = "essen-small"
seq_len = 32
val_fraction = 0.2
delimiter_length = 4
[model]
name = "melody_transformer"
d_model = 32
layers = 2
heads = 4
ff = 64
max_len = 32
{model_extra}
dropout = 0.0
[train]
epochs = 1
batch_size = 8
lr = 0.003
log_every = 5
checkpoint_every = 1000
seed = 0
num_threads = 1
[sample]
steps = {sample_steps}
"""


def tiny_tf_toml(sample_steps: int = 40, model_extra: str = "") -> str:
    """The tiny Transformer config the tests train (2 layers of width 32 over 32-step windows of essen-small)."""
    return TINY_TF_TEMPLATE.format(sample_steps=sample_steps, model_extra=model_extra)


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(textwrap.dedent(TINY_LSTM))
    return p


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny melody LSTM trained for 60 steps (shared by sampling and CLI tests)."""
    from tunesmith.training import train

    d = tmp_path_factory.mktemp("runs")
    cfg = d / "tiny.toml"
    cfg.write_text(textwrap.dedent(TINY_LSTM))
    train(cfg, d / "run", device="cpu", max_steps=60, progress=False)
    return d / "run"


def free_port() -> int:
    """A TCP port nobody listens on now, for torchrun's rendezvous: fixed ports collided when two test runs
    shared the machine (a rank then aborted in gloo)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FixedBatches:
    """A batch stream for objective.step() in unit tests: every draw (and ``last()``) is the same batch."""

    def __init__(self, batch):
        self.b = batch

    def __call__(self):
        return self.b

    def last(self):
        return self.b
