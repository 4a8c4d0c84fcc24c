"""Issue 13: the harmonic codec and the pitch + family conditioned audio models (harmonic_cvae, harmonic_gan)."""
import json
import os
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "tunesmith" / "numba"))

import numpy as np
import pytest
import torch

from tunesmith.cli import main
from tunesmith.data.base import build_data
from tunesmith.data.harmonic import HarmonicCodec, midi_to_hz
from tunesmith.errors import TunesmithError
from tunesmith.models import build_model
from tunesmith.models.controls import controls

TINY = dict(dataset="nsynth-mini", families=["flute", "brass", "organ"], val_fraction=0.2, clip_seconds=0.5,
            hop=512, frames=16, harmonics=16, noise_bands=4)


@pytest.fixture(scope="module")
def data():
    return build_data("harmonic", **TINY)


def _tone(pitch, amps, sr=16000, seconds=1.0):
    t = np.arange(int(sr * seconds)) / sr
    f0 = 440 * 2 ** ((pitch - 69) / 12)
    return sum(a * np.sin(2 * np.pi * f0 * (k + 1) * t) for k, a in enumerate(amps)).astype(np.float32)


def _peak_hz(y, sr=16000):
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.argmax(spec) * sr / len(y)


def test_analysis_reads_harmonic_amplitudes_and_synthesis_plays_the_requested_pitch():
    codec = HarmonicCodec(clip_seconds=1.0, frames=32, harmonics=8, noise_bands=4)
    amps = [0.5, 0.25, 0.0, 0.1]
    img = codec.analyze(_tone(57, amps), 57)                     # A3, 220 Hz
    assert img.shape == (12, 32)
    mid = codec._from_unit(img[:8, 10:20]).mean(1).numpy()       # steady frames, linear amplitude
    assert np.allclose(mid[[0, 1, 3]], [0.5, 0.25, 0.1], rtol=0.1), mid
    assert mid[2] < 0.01                                         # the missing 3rd harmonic stays silent
    # the same image played at another pitch: the loudest partial moves there, amplitudes kept
    y = codec.synthesize(img, 69, seed=0)
    assert y.shape == (16000,)
    assert abs(_peak_hz(y[2000:14000]) - 440.0) < 3.0
    again = codec._from_unit(codec.analyze(y, 69)[:8, 10:20]).mean(1).numpy()
    assert np.allclose(again[[0, 1, 3]], mid[[0, 1, 3]], rtol=0.15), (again, mid)


def test_a_wider_floor_keeps_the_quiet_tail_of_a_decaying_note():
    """Issue 13: with floor_db -80 the harmonics of a note's decay below -80 dBFS are cut to silence (the
    re-synthesised notes lost their tails and were classified as the wrong family); -120 keeps them."""
    sr, n = 16000, 32000
    t = np.arange(n) / sr
    x = (0.5 * np.exp(-t / 0.15) * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # -6 dB -> -130 dB in 2 s
    tail = slice(int(1.6 * sr), int(1.9 * sr))                                      # about -108 dB RMS
    rms = lambda v: float(np.sqrt(np.mean(v ** 2)))  # noqa: E731
    for floor, kept in ((-80.0, False), (-120.0, True)):
        codec = HarmonicCodec(clip_seconds=2.0, frames=64, harmonics=8, noise_bands=4, floor_db=floor)
        y = codec.synthesize(codec.analyze(x, 57), 57, seed=0)
        ratio = rms(y[tail]) / rms(x[tail])
        assert (0.8 < ratio < 1.25) if kept else ratio < 0.01, (floor, ratio)  # measured 1.002 / 0.0


def test_harmonics_above_nyquist_are_silent_and_midi_to_hz():
    assert float(midi_to_hz(69)) == pytest.approx(440.0)
    codec = HarmonicCodec(clip_seconds=0.5, frames=16, harmonics=64, noise_bands=4)
    img = codec.analyze(_tone(84, [0.5]), 84)                    # C6: 1047 Hz, harmonic 8 is above 0.95 x 8 kHz
    assert (img[7:64] == -1).all()


def test_encoding_carries_family_and_pitch(data):
    b = data.train.batch(torch.arange(4))
    assert set(b) == {"image", "label", "pitch"}
    assert b["image"].shape == (4, 20, 16) and b["image"].min() >= -1 and b["image"].max() <= 1
    assert data.codec.labels == ["brass", "flute", "organ"]
    lo, hi = data.codec.pitch_range
    assert 40 <= lo < hi <= 90


def test_cvae_loss_falls_and_samples_carry_the_request(data):
    torch.manual_seed(0)
    m = build_model("harmonic_cvae", data.codec.model_info(), latent_dim=4, width=16)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    batch = data.train.batch(torch.arange(8))
    losses = []
    for _ in range(25):
        out = m(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.5 * losses[0], losses
    lo, _ = data.codec.pitch_range
    audio = m.eval().generate(data.codec, 3, generator=torch.Generator().manual_seed(0), condition="flute", pitch=lo)
    assert [a.label for a in audio] == ["flute"] * 3 and [a.pitch for a in audio] == [lo] * 3
    assert audio[0].samples.shape == (data.codec.num_samples,) and np.abs(audio[0].samples).max() <= 1
    with pytest.raises(TunesmithError, match="outside the MIDI pitches"):
        m.generate(data.codec, 1, pitch=lo - 1)
    with pytest.raises(TunesmithError, match="unknown condition"):
        m.generate(data.codec, 1, condition="kazoo")


def test_gan_aux_classifiers_learn_and_generator_follows_the_condition(data):
    torch.manual_seed(0)
    m = build_model("harmonic_gan", data.codec.model_info(), latent_dim=4, width=16, critic_width=16)
    batch = data.train.batch(torch.arange(12))
    d = m(batch, mode="critic")
    assert {"loss", "gp", "aux_pitch", "aux_family", "wasserstein"} <= set(d)
    opt = torch.optim.Adam(m.critic.parameters(), 3e-3)
    aux = []
    for _ in range(20):
        out = m(batch, mode="critic")
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        aux.append(float((out["aux_pitch"] + out["aux_family"]).detach()))
    assert aux[-1] < 0.8 * aux[0], aux                          # the critic learns to name pitch and family
    g = m(batch, mode="generator")
    assert torch.isfinite(g["loss"]) and "aux" in g
    audio = m.eval().generate(data.codec, 2, generator=torch.Generator().manual_seed(0), condition="organ")
    assert [a.label for a in audio] == ["organ", "organ"] and audio[0].pitch == sum(data.codec.pitch_range) // 2


def test_controls_declare_condition_and_pitch(data):
    from tunesmith.models.audio_cond import HarmonicCVAE, HarmonicGAN

    for cls in (HarmonicCVAE, HarmonicGAN):
        names = [c.name for c in controls(cls)]
        assert names[:2] == ["condition", "pitch"] and "temperature" in names
    cond = controls(HarmonicCVAE, data.codec)[0]
    assert cond.type == "choice" and cond.choices == ("brass", "flute", "organ")  # family names, not clipped


TINY_CVAE = ('name = "t"\n[data]\nencoding = "harmonic"\ndataset = "nsynth-mini"\nfamilies = ["flute", "brass"]\n'
             'val_fraction = 0.2\nclip_seconds = 0.5\nframes = 16\nharmonics = 16\nnoise_bands = 4\n'
             '[model]\nname = "harmonic_cvae"\nlatent_dim = 4\nwidth = 16\n'
             '[train]\nepochs = 1\nbatch_size = 8\nlog_every = 1\n')


def test_cli_trains_samples_wav_and_sidecar_and_refuses_bad_pitch(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY_CVAE)
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run), "--max-steps", "3", "--quiet"]) == 0
    out = tmp_path / "a"
    assert main(["sample", str(run), "--condition", "brass", "--pitch", "60", "--num", "2", "--seed", "0",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.wav")) == ["sample_000.wav", "sample_001.wav"]
    side = json.loads((out / "samples.json").read_text())
    assert side["samples"] == [{"file": "sample_000.wav", "pitch": 60, "family": "brass"},
                               {"file": "sample_001.wav", "pitch": 60, "family": "brass"}]
    capsys.readouterr()
    assert main(["sample", str(run), "--condition", "brass", "--pitch", "130", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --pitch 130 is outside") and "\n" not in err
    assert not (tmp_path / "b").exists()


def test_mrstft_loss_is_zero_on_itself_and_grows_with_the_error():
    from tunesmith.models.wavenet import mrstft_loss

    x = torch.from_numpy(_tone(60, [0.5, 0.2], seconds=0.5))[None]
    assert float(mrstft_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    small = float(mrstft_loss(x + 0.001 * torch.randn_like(x), x))
    big = float(mrstft_loss(x + 0.05 * torch.randn_like(x), x))
    assert 0 < small < big


def test_wavenet_with_a_harmonic_source_trains_and_repitches():
    data = build_data("waveform", dataset="nsynth-mini", families=["flute", "organ"], val_fraction=0.2,
                      clip_seconds=0.25)
    torch.manual_seed(0)
    m = build_model("wavenet", data.codec.model_info(), channels=8, dilations=[1, 2], bottleneck=4, pool=32,
                    dropout=0.0, train_crop=None, source_harmonics=4, loss="mrstft", num_primers=2)
    src = m.source(torch.tensor([69]), 4000)
    assert src.shape == (1, 4, 4000) and abs(_peak_hz(src[0, 0].numpy()) - 440) < 5
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    batch = data.train.batch(torch.arange(6))
    losses = []
    for _ in range(12):
        out = m(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.9 * losses[0], losses
    from tunesmith.models.base import CheckpointContext

    m.on_checkpoint(CheckpointContext(data.train, data.codec, 0, None))
    assert (m.primer_pitch >= 0).all()
    audio = m.eval().generate(data.codec, 2, generator=torch.Generator().manual_seed(0), pitch=64)
    assert [a.pitch for a in audio] == [64, 64] and "re-pitched to MIDI 64" in audio[0].label
    plain = build_model("wavenet", data.codec.model_info(), channels=8, dilations=[1], bottleneck=4, pool=32)
    with pytest.raises(TunesmithError, match="harmonic source"):
        plain.generate(data.codec, 1, pitch=64)


def test_waveform_val_max_items_validates_on_a_fixed_evenly_spaced_subset():
    from tunesmith.data.audio_encodings import val_subset

    kw = dict(dataset="nsynth-mini", families=["flute", "organ"], val_fraction=0.4, clip_seconds=0.05)
    full = build_data("waveform", **kw)
    n = len(full.val)
    assert n >= 4, n
    sub = build_data("waveform", val_max_items=3, **kw)
    assert len(sub.val) == 3 and sub.stats["val_items"] == 3 and sub.stats["val_clips"] == n
    assert len(sub.reference) == n  # evaluation still sees every held-out clip
    pick = [0, round((n - 1) / 2), n - 1]  # first, middle, last: the same notes on every run
    assert torch.equal(sub.val.tensors["audio"], full.val.tensors["audio"][pick])
    assert torch.equal(sub.val.tensors["pitch"], full.val.tensors["pitch"][pick])
    assert val_subset(list(range(5)), 10) == list(range(5)) and val_subset(list(range(5)), None) == list(range(5))
    for bad in (0, 2.5, True):
        with pytest.raises(TunesmithError, match="val_max_items"):
            val_subset(list(range(5)), bad)


def test_cvae_family_prior_is_fitted_to_the_encoded_training_notes_and_old_runs_sample_as_before(tmp_path, capsys):
    """The "family" prior: on_checkpoint stores, per family, the mean and std of the training notes' posterior
    means (saved with the weights); sampling from it differs from N(0, I); a run saved without the buffers
    loads, and then both priors draw the same notes as the standard one did."""
    from safetensors.torch import load_file, save_file

    from tunesmith.training.checkpoint import load_run

    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY_CVAE + '[sample]\nprior = "family"\n')
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run), "--max-steps", "4", "--quiet"]) == 0
    model, codec, conf, _ = load_run(run)
    train = build_data(**conf.data).train
    with torch.no_grad():
        b = train.batch(torch.arange(len(train)))
        mu, _ = model.encode(b["image"], model.cond_vector(b["label"], b["pitch"]))
    for f in range(2):
        codes = mu[b["label"] == f].double()
        assert torch.allclose(model.prior_mean[f].double(), codes.mean(0), atol=1e-5)
        assert torch.allclose(model.prior_std[f].double(), codes.std(0, unbiased=False), atol=1e-5)
    assert (model.prior_std < 0.999).any() and model.prior_mean.abs().max() > 1e-3  # not the N(0, I) defaults

    def images(m, prior):
        with torch.no_grad():
            return [a.samples for a in m.generate(codec, 2, generator=torch.Generator().manual_seed(0),
                                                 condition="brass", pitch=60, prior=prior)]

    fam, std = images(model, "family"), images(model, "standard")
    assert not np.allclose(fam[0], std[0])
    with pytest.raises(TunesmithError, match="prior must be one of family, standard"):
        model.generate(codec, 1, prior="posterior")
    # a run saved before the family prior existed: no buffers in the file; it loads and samples as before
    w = run / "checkpoint" / "model.safetensors"
    state = load_file(str(w))
    save_file({k: v for k, v in state.items() if not k.startswith("prior_")}, str(w))
    old, _, _, _ = load_run(run)
    assert (old.prior_mean == 0).all() and (old.prior_std == 1).all()
    for a, c in zip(images(old, "family"), std):
        assert np.array_equal(a, c)
    capsys.readouterr()
    assert main(["sample", str(run), "--set", "prior=posterior", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "prior must be one of" in err and "\n" not in err
    bad = tmp_path / "bad.toml"  # a config with an unknown prior is refused before training
    bad.write_text(cfg.read_text().replace('prior = "family"', 'prior = "posterior"'))
    assert main(["train", str(bad), "--out", str(tmp_path / "bad"), "--max-steps", "1", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "[sample] prior must be one of family, standard" in err and "\n" not in err
    prior = {c.name: c for c in controls(type(model))}["prior"]
    assert prior.default == "family" and prior.range == "family | standard"
