"""The four seed-003 audio models: shapes, causality, conditioning, falling losses, and the CLI end to end."""
import os
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "tunesmith" / "numba"))

import textwrap

import pytest
import soundfile as sf
import torch

from tunesmith.cli import main
from tunesmith.data.base import build_data
from tunesmith.errors import TunesmithError
from tunesmith.models import build_model

TINY_SPEC = dict(families=["flute", "brass"], max_items=6, val_fraction=0.34, n_fft=64, hop=16, frames=32, bins=32,
                 clip_seconds=0.032)
TINY_WAVE = dict(families=["brass", "organ"], pitch_range=[52, 64], max_items=None, val_fraction=0.25,
                 clip_seconds=0.064)


def falls(model, data, steps=12, lr=3e-3, key="loss", mode="loss"):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batch = data.batch(torch.arange(min(8, len(data))))
    losses = []
    for _ in range(steps):
        out = model(batch, mode=mode)
        opt.zero_grad()
        out[key].backward()
        opt.step()
        losses.append(float(out[key].detach()))
    return losses


@pytest.fixture(scope="module")
def spec():
    return build_data("spectrogram", **TINY_SPEC)


@pytest.fixture(scope="module")
def wave():
    return build_data("waveform", **TINY_WAVE)


def test_spec_gan_shapes_gp_and_losses(spec):
    torch.manual_seed(0)
    m = build_model("spec_gan", spec.codec.model_info(), latent_dim=8, base_channels=16, n_up=3, critic_channels=8,
                    n_down=3)
    assert m.generator(torch.randn(3, 8)).shape == (3, 2, 32, 32)
    batch = spec.train.batch(torch.arange(4))
    d = m(batch, mode="critic")
    assert {"loss", "gp", "real", "fake"} <= set(d) and d["gp"] >= 0
    # critic loss falls when only the critic trains; generator loss falls when only the generator trains
    opt = torch.optim.Adam(m.critic.parameters(), 3e-3)
    cl = []
    for _ in range(10):
        out = m(batch, mode="critic"); opt.zero_grad(); out["loss"].backward(); opt.step(); cl.append(float(out["loss"].detach()))
    assert cl[-1] < cl[0]
    opt = torch.optim.Adam(m.generator.parameters(), 3e-3)
    gl = []
    for _ in range(10):
        out = m(batch, mode="generator"); opt.zero_grad(); out["loss"].backward(); opt.step(); gl.append(float(out["loss"].detach()))
    assert gl[-1] < gl[0]
    audio = m.eval().generate(spec.codec, 2, generator=torch.Generator().manual_seed(0))
    assert len(audio) == 2 and audio[0].samples.shape == (spec.codec.num_samples,)
    assert audio[0].sample_rate == 16000 and abs(audio[0].samples).max() <= 1


def test_spec_bilstm_shapes_loss_and_continuation():
    data = build_data("spectrogram_frames", context=4, **TINY_SPEC)
    m = build_model("spec_bilstm", data.codec.model_info(), hidden=16, layers=2, dropout=0.0, num_primers=2)
    fr = data.train.batch(torch.arange(3))["frames"]
    assert m.predict(fr[:, :-1]).shape == (3, 64)
    losses = falls(m, data.train)
    assert losses[-1] < 0.8 * losses[0]
    from tunesmith.models.base import CheckpointContext

    m.on_checkpoint(CheckpointContext(data.train, data.codec, 0, None))
    assert torch.equal(m.primers[0], data.train.frames[0, :4])
    m.eval()
    out = m.generate(data.codec, 3)
    assert len(out) == 3 and out[0].samples.shape == (data.codec.num_samples,)


def test_spec_bilstm_residual_predicts_the_change_from_the_last_frame():
    """model.residual: next frame = last context frame + the head's output (issue 13), so a head that
    outputs zero repeats the last frame; input_noise only perturbs the context while training."""
    data = build_data("spectrogram_frames", context=4, **TINY_SPEC)
    m = build_model("spec_bilstm", data.codec.model_info(), hidden=16, layers=2, dropout=0.0, num_primers=2,
                    residual=True, input_noise=0.05)
    fr = data.train.batch(torch.arange(3))["frames"]
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
    assert torch.equal(m.eval().predict(fr[:, :-1]), fr[:, -2])
    torch.manual_seed(0)
    m2 = build_model("spec_bilstm", data.codec.model_info(), hidden=16, layers=2, dropout=0.0, num_primers=2,
                     residual=True, input_noise=0.05)
    batch = data.train.batch(torch.arange(3))
    assert torch.equal(m2.eval()(batch)["loss"], m2.eval()(batch)["loss"])  # no noise in eval mode
    assert not torch.equal(m2.train()(batch)["loss"], m2.train()(batch)["loss"])  # noise in training
    losses = falls(m2.train(), data.train)
    assert losses[-1] < losses[0]


def test_wavenet_is_causal_and_learns(wave):
    torch.manual_seed(0)
    m = build_model("wavenet", wave.codec.model_info(), channels=8, bottleneck=4, pool=16, dropout=0.0,
                    num_primers=2, train_crop=None).eval()
    L = 512
    x = torch.randn(2, 1, L)
    y = m.decode(m.encode(x), L)
    assert y.shape == (2, 1, L)
    for t in (0, 100, 255, 300):
        x2 = x.clone()
        x2[..., t + 1:] = torch.randn(2, 1, L - t - 1)
        y2 = m.decode(m.encode(x2), L)
        assert torch.allclose(y[..., : t + 1], y2[..., : t + 1], atol=1e-6)  # nothing after t reaches t
        assert not torch.allclose(y[..., t + 40:], y2[..., t + 40:])  # ...but later samples do change
    losses = falls(m.train(), wave.train, steps=15)
    assert losses[-1] < 0.8 * losses[0]


def test_cvae_condition_changes_output_and_losses_fall(wave):
    torch.manual_seed(0)
    info = wave.codec.model_info()
    m = build_model("audio_cvae", info, latent_dim=4, channels=[4, 8], kernel_size=5, stride=4)
    z = torch.randn(2, 4)
    a = m.decode(z, torch.tensor([0, 0]))
    b = m.decode(z, torch.tensor([1, 1]))
    assert a.shape == (2, 1, info["num_samples"])
    assert (a - b).abs().mean() > 1e-4  # same z, other family -> other audio
    losses = falls(m, wave.train, steps=20, lr=1e-2)
    assert losses[-1] < 0.93 * losses[0]  # raw waveforms: slow (measured 17.2 -> 15.3 in 20 steps)
    m.eval()
    out = m.generate(wave.codec, 2, generator=torch.Generator().manual_seed(0), condition="organ")
    assert [o.label for o in out] == ["organ", "organ"]
    with pytest.raises(TunesmithError, match="known: brass, organ"):
        m.generate(wave.codec, 1, condition="tuba")


CVAE_TOML = """
name = "tiny_cvae"
[data]
encoding = "waveform"
dataset = "nsynth-mini"
families = ["brass", "organ"]
pitch_range = [52, 62]
val_fraction = 0.25
clip_seconds = 0.128
[model]
name = "audio_cvae"
latent_dim = 4
channels = [4, 8]
kernel_size = 5
[train]
epochs = 1
batch_size = 4
log_every = 2
num_threads = 1
"""


def test_cli_train_sample_condition(tmp_path, capsys):
    cfg = tmp_path / "cvae.toml"
    cfg.write_text(textwrap.dedent(CVAE_TOML))
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run), "--max-steps", "6", "--quiet"]) == 0
    assert main(["sample", str(run), "--num", "2", "--seed", "0", "--condition", "brass", "--out",
                 str(tmp_path / "s")]) == 0
    x, sr = sf.read(tmp_path / "s" / "sample_000.wav")
    assert sr == 16000 and len(x) == int(0.128 * 16000)
    assert (tmp_path / "s" / "sample_001.png").stat().st_size > 1000
    assert main(["sample", str(run), "--condition", "tuba"]) == 1
    assert "known: brass, organ" in capsys.readouterr().err
