"""The kinds of test that catch deliberate bugs in the core (issue 11, item 7): each one fails when the line
it guards is mutated -- a flipped Gumbel sign, swapped smoothing weights, a reversed KL, a gradient penalty
without ``create_graph``, a GAN loss with the wrong sign, the ``checkpoint.old`` fallback removed."""
import math
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from tunesmith.models.melody_lstm import MelodyLSTM


# ------------------------------------------------------------------------------ sampling: softmax(logits / T)
def draw(logits, temperature, top_k, n=40_000, seed=0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    ids = MelodyLSTM.pick(logits.expand(n, -1).clone(), temperature, top_k, generator=g)
    return np.bincount(ids.numpy(), minlength=logits.shape[-1]) / n


LOGITS = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]])


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7])
def test_pick_draws_from_softmax_of_logits_over_temperature(temperature):
    want = torch.softmax(LOGITS[0].double() / temperature, -1).numpy()
    got = draw(LOGITS, temperature, None)
    assert 0.5 * np.abs(got - want).sum() < 0.01  # total variation; a flipped Gumbel sign gives > 0.1
    chi = stats.chisquare(got * 40_000, want / want.sum() * 40_000)
    assert chi.pvalue > 1e-3, (got, want)


def test_pick_with_top_k_draws_from_the_renormalised_top_k():
    T, k = 0.8, 3
    p = torch.softmax(LOGITS[0].double() / T, -1).numpy()
    want = np.where(np.arange(6) < k, p, 0.0)
    want /= want.sum()
    got = draw(LOGITS, T, k)
    assert got[k:].sum() == 0.0  # never outside the k most likely
    assert 0.5 * np.abs(got - want).sum() < 0.01
    assert stats.chisquare(got[:k] * 40_000, want[:k] * 40_000).pvalue > 1e-3


def test_temperature_changes_the_distribution_the_right_way():
    cold, hot = draw(LOGITS, 0.3, None), draw(LOGITS, 3.0, None)
    assert cold[0] > 0.9 and hot[0] < 0.35  # T < 1 sharpens, T > 1 flattens


# ------------------------------------------------------------------------------ GANs: loss directions, penalty
class ToyGAN:
    """A GANBase with linear generator/critic on 2-D points (the machinery every GAN family uses)."""

    @staticmethod
    def make(loss):
        from tunesmith.models.gan_base import GANBase

        class Toy(GANBase):
            def __init__(self):
                super().__init__(loss=loss, gp_weight=10.0)
                self.generator = nn.Linear(2, 2)
                self.critic = nn.Linear(2, 1)

            def real_input(self, batch):
                return batch["x"]

            def fake(self, n, generator=None, real=None):
                return self.generator(torch.randn(n, 2, generator=generator))

            def discrete(self, x):
                return (x > 0).long()

        torch.manual_seed(0)
        return Toy()


def _sgd_step(params, loss, lr=0.05):
    grads = torch.autograd.grad(loss, list(params))
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= lr * g


@pytest.mark.parametrize("loss", ["bce", "wgan", "wgan-gp"])
def test_gan_losses_push_critic_and_generator_the_right_way(loss):
    m = ToyGAN.make(loss)
    real = {"x": torch.randn(256, 2, generator=torch.Generator().manual_seed(1)) + 3.0}

    def margin():  # how much higher the critic scores real than fake points, on fixed noise
        with torch.no_grad():
            fake = m.generator(torch.randn(256, 2, generator=torch.Generator().manual_seed(2)))
            return float(m.critic_score(real["x"]).mean() - m.critic_score(fake).mean())

    def fake_score():
        with torch.no_grad():
            return float(m.critic_score(m.generator(torch.randn(256, 2, generator=torch.Generator().manual_seed(2)))).mean())

    before = margin()
    for _ in range(5):
        torch.manual_seed(3)
        _sgd_step(list(m.critic.parameters()), m(real, mode="critic")["loss"])
    assert margin() > before + 1e-3  # the critic learns to tell real from fake
    before = fake_score()
    for _ in range(5):
        torch.manual_seed(4)
        _sgd_step(list(m.generator.parameters()), m(real, mode="generator")["loss"])
    assert fake_score() > before + 1e-3  # the generator learns to be scored as real


def test_wasserstein_critic_loss_value():
    m = ToyGAN.make("wgan")
    real = {"x": torch.randn(64, 2)}
    torch.manual_seed(5)
    out = m(real, mode="critic")
    torch.manual_seed(5)
    with torch.no_grad():
        fake = m.fake(64)
        w = m.critic_score(real["x"]).mean() - m.critic_score(fake).mean()
    assert float(out["loss"].detach()) == pytest.approx(-float(w), abs=1e-6)
    assert float(out["wasserstein"]) == pytest.approx(float(w), abs=1e-6)


def test_gradient_penalty_value_and_its_gradient_reach_the_critic():
    """A linear critic x -> w.x + b has input gradient w everywhere: the penalty is (|w| - 1)^2 and its
    gradient 2 (|w| - 1) w / |w|. Without create_graph=True the penalty would not train the critic."""
    from tunesmith.models.gan_base import gradient_penalty

    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    gp, norm = gradient_penalty(lambda x: critic(x).reshape(-1), torch.randn(16, 2), torch.randn(16, 2))
    assert float(gp) == pytest.approx(16.0) and float(norm) == pytest.approx(5.0)
    gp.backward()
    assert torch.allclose(critic.weight.grad, torch.tensor([[4.8, 6.4]]))


def test_spec_gan_gradient_penalty_trains_its_critic():
    """SpecGAN (seed 003) has its own penalty: its gradient must reach the critic's weights."""
    from tunesmith.models.spec_gan import SpecGAN

    torch.manual_seed(0)
    m = SpecGAN(channels=2, frames=16, bins=16, latent_dim=4, base_channels=8, n_up=2, critic_channels=4,
                n_down=2, dropout=0.0)
    real = torch.randn(4, 2, 16, 16)
    gp = m.gradient_penalty(real, torch.randn_like(real))
    assert gp.requires_grad and float(gp) > 0
    gp.backward()
    total = sum(float(p.grad.abs().sum()) for p in m.critic.parameters() if p.grad is not None)
    assert total > 0


# ------------------------------------------------------------------------------ the n-gram baseline by hand
def test_ngram_baseline_value_by_hand():
    """Order 2, vocabulary {/, a, b}, training stream a b a b b.
    Unigram ML: a 2/5, b 3/5 (5 tokens, 2 types: lambda = 5/7), mixed with uniform 1/3:
      p0 = (2/21, 8/21, 11/21).
    After a: {b: 2} (lambda = 2/3): p(. | a) = 2/3 (0, 0, 1) + 1/3 p0 = (2/63, 8/63, 53/63).
    After b: {a: 1, b: 1} (lambda = 1/2): p(. | b) = 1/2 (0, 1/2, 1/2) + 1/2 p0 = (1/21, 37/84, 43/84).
    Validation windows [a b a] and [/ / a]: targets b|a, a|b, and a after "/" (unseen context: p0); the
    "/ /" step is a run of delimiters and is skipped."""
    from tunesmith.data.timestep import ngram_baseline

    windows = torch.tensor([[1, 2, 1], [0, 0, 1]])

    class Val:
        def __len__(self):
            return 2

        def batch(self, idx):
            return {"tokens": windows[idx]}

    bundle = SimpleNamespace(codec=SimpleNamespace(index={"/": 0, "a": 1, "b": 2}, vocab=["/", "a", "b"]),
                             train=SimpleNamespace(stream=np.array([1, 2, 1, 2, 2])), val=Val())
    r = ngram_baseline(bundle, order=2)
    want = -(math.log(53 / 63) + math.log(37 / 84) + math.log(8 / 21)) / 3
    assert r["val_loss"] == pytest.approx(want, rel=1e-9)
    assert r["val_acc"] == pytest.approx(1 / 3)  # argmax: b after a (right), b after b, b after / (wrong)


# ------------------------------------------------------------------------------ KL directions
def test_vae_kl_is_kl_of_posterior_from_prior():
    """KL(N(mu, s^2) || N(0, 1)) for mu = (1, 0), s^2 = (4, 1/4): 0.5 [(4 + 1 - 1 - ln 4) + (1/4 - 1 + ln 4)]
    = 1.625. The reverse direction KL(N(0, 1) || N(mu, s^2)) would be 1.25."""
    from tunesmith.models import build_model

    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.log(torch.tensor([[4.0, 0.25]]))
    vae = build_model("vae", {"pitches": 4, "bars": 1, "steps_per_bar": 4}, latent_dim=2, hidden=8, bar_hidden=8,
                      bar_code=4, n_sliders=2).eval()
    vae.encode = lambda roll, label=None: (mu, logvar)
    out = vae({"roll": torch.zeros(1, 4, 4)}, mode="loss")
    assert float(out["kl"]) == pytest.approx(1.625, rel=1e-6)
    mvae = build_model("melody_vae", {"vocab_size": 5}, phrase_len=4, steps_per_bar=4, embed_dim=4, enc_hidden=8,
                       dec_hidden=8, latent_dim=2, free_bits=0.0, n_sliders=2).eval()
    mvae.encode = lambda ids, label=None: (mu, logvar)
    out = mvae({"tokens": torch.zeros(1, 4, dtype=torch.long)}, mode="loss")
    assert float(out["kl"]) == pytest.approx(1.625, rel=1e-6)


def test_evaluation_kl_direction_on_gaussians():
    """KL(N(0, 1) || N(0, 4)) = ln 2 + 1/8 - 1/2 = 0.3181; the reverse is 0.8069."""
    from tunesmith.evaluation.compare import compare_distances, kl_from_values

    grid = np.linspace(-30, 30, 20001)
    p, q = stats.norm.pdf(grid, 0, 1), stats.norm.pdf(grid, 0, 2)
    assert kl_from_values(p, q, grid) == pytest.approx(math.log(2) - 0.375, rel=1e-4)
    # the reverse, lowered a little by the floor on q (1e-10 of its peak) in p's tails
    assert kl_from_values(q, p, grid) == pytest.approx(1.5 - math.log(2), rel=1e-2)
    # the table's KL is KL(reference intra-set || inter-set) (mgeval's kl_dist(intra, inter))
    rng = np.random.default_rng(0)
    c = compare_distances("x", rng.normal(0, 1, 4000), rng.normal(0, 1, 4000), rng.normal(0, 2, 4000))
    assert c.stats["kl_ref_intra_vs_inter"] == pytest.approx(math.log(2) - 0.375, abs=0.04)


# ------------------------------------------------------------------------------ checkpoint.old
def test_loading_falls_back_to_checkpoint_old(tiny_run, tmp_path):
    """A crash between the two renames of write_checkpoint leaves `checkpoint` without its weights and the
    previous complete one in `checkpoint.old`: loading must use the old one."""
    from safetensors.torch import load_file, save_file

    from tunesmith.training.checkpoint import checkpoint_dir, load_run

    run = tmp_path / "run"
    shutil.copytree(tiny_run / "checkpoint", run / "checkpoint")
    shutil.copytree(tiny_run / "checkpoint", run / "checkpoint.old")
    w = load_file(str(run / "checkpoint.old" / "model.safetensors"))
    name = sorted(w)[0]
    w[name] = w[name] + 1.0  # the old one is recognisably different
    save_file(w, str(run / "checkpoint.old" / "model.safetensors"))
    assert checkpoint_dir(run) == run / "checkpoint"  # both complete: the newer one
    (run / "checkpoint" / "model.safetensors").unlink()
    assert checkpoint_dir(run) == run / "checkpoint.old"
    model, codec, cfg, meta = load_run(run)
    assert torch.equal(model.state_dict()[name].float(), w[name].float())


# ------------------------------------------------------------------------------ pitch classes per bar
def test_pitch_classes_per_bar_counts_octaves_once():
    """Bar 0: C4 C5 E4 (3 pitches, 2 pitch classes); bar 1: G4 G5 (2 pitches, 1 class) -> UPC (2 + 1) / 2."""
    from tunesmith.data.notes import Score
    from tunesmith.evaluation import features as F

    s = Score.from_notes([(60, 0, 1), (72, 1, 1), (64, 2, 1), (67, 4, 1), (79, 5, 1)])
    other = Score.from_notes([(61, 0, 4)])
    b = F.NoteBatch.from_scores([s, other])
    assert F.pitch_classes_per_bar(b).tolist() == [1.5, 1.0]
    assert F.pitches_per_bar(b).tolist() == [2.5, 1.0]
