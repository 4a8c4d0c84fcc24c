"""Conditional audio models that play the note you ask for, on the instrument family you ask for (issue 13).

Both work on the harmonic + noise images of :mod:`tunesmith.data.harmonic` (time x [64 harmonic amplitudes
+ 16 noise bands], dB in [-1, 1]) and are conditioned on the instrument family (one-hot) and the MIDI pitch
(a scaled number and its square, so unseen pitches between the trained ones interpolate). The codec's
harmonic synthesiser plays the image at the requested pitch, so the f0 is right by construction; what the
models learn is the timbre of a family at a pitch, which is what the family classifier and the MFCC
distances judge.

* ``harmonic_cvae``: a conditional VAE. Encoder: image + condition (broadcast over time) -> 3 strided 1-D
  convolutions over time -> z_mean, z_log_var; decoder: [z, condition] -> dense -> 3 transposed 1-D
  convolutions (the condition concatenated again before each) -> tanh. Loss: squared error summed over the
  image + ``beta`` x KL, with ``kl_warmup_steps`` of linear warm-up.
* ``harmonic_gan``: a GANSynth-style conditional GAN over the same images: the generator is the CVAE's
  decoder driven by noise; the critic (strided 1-D convolutions over time) has a Wasserstein head and, as in
  GANSynth (and AC-GAN), an auxiliary classifier of the pitch, plus one of the family. Critic loss:
  WGAN + ``gp_weight`` x gradient penalty + ``aux_weight`` x cross-entropy of the real notes' pitch and
  family; generator loss: -critic + ``aux_weight`` x cross-entropy of the requested pitch and family.

``tunesmith sample RUN --condition brass --pitch 60 --num 4`` draws the CVAE's z from its prior, ``prior``:

* ``"standard"``: z ~ N(0, temperature^2), the prior the KL term pulls towards;
* ``"family"``: z = mu_f + temperature * sigma_f * eps, a diagonal Gaussian fitted to the class-conditional
  aggregate posterior: ``on_checkpoint`` encodes the training notes and stores, per family f, the mean and
  standard deviation of their posterior means as buffers (``prior_mean``, ``prior_std``, saved with the
  weights). A run saved before these buffers existed loads with mean 0 and std 1, so both priors sample it
  exactly as before.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.audio import postprocess
from ..errors import TunesmithError
from .base import Audio, TunesmithModel, gaussian_kl_loss, register_model

PITCH_CENTRE, PITCH_SCALE = 60.0, 24.0


class CondMixin:
    """Shared conditioning: family one-hot + pitch features, and turning images into labelled Audio."""

    CONTROL_NOTES = {
        "condition": "instrument family to play (e.g. brass, flute, guitar); default: cycle through them",
        "pitch": "MIDI pitch to play (within the trained range, see the error for it); default: the range's middle",
        "temperature": "scale of the latent noise z ~ N(0, t^2): < 1 more typical notes, > 1 more varied",
        "prior": "where z comes from: family = a Gaussian fitted per family to the encoded training notes "
                 "(the CVAE's aggregate posterior; temperature scales its spread), standard = N(0, t^2)",
    }

    def cond_vector(self, label: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        p = (pitch.float() - PITCH_CENTRE) / PITCH_SCALE
        return torch.cat([F.one_hot(label, self.num_labels).float(), p[:, None], p[:, None] ** 2], 1)

    @property
    def cond_dim(self) -> int:
        return self.num_labels + 2

    def _requests(self, codec, n: int, condition, pitch):
        if condition is not None:
            labels = torch.full((n,), codec.label_index(condition), dtype=torch.long)
        else:
            labels = torch.arange(n) % self.num_labels
        lo, hi = codec.pitch_range
        p = codec.check_pitch(pitch) if pitch is not None else (lo + hi) // 2
        return labels, torch.full((n,), p, dtype=torch.long)

    def _to_audio(self, codec, images, labels, pitches, seed: int, denoise) -> list[Audio]:
        out = []
        for i, (img, lab, p) in enumerate(zip(images.cpu(), labels, pitches)):
            y = codec.synthesize(img, int(p), seed=seed + i)
            y = y / max(1e-6, float(abs(y).max())) * 0.9  # NSynth notes are peak-normalised
            out.append(Audio(postprocess(y, codec.sample_rate, denoise), codec.sample_rate,
                             codec.labels[int(lab)], pitch=int(p)))
        return out


class UpDecoder(nn.Module):
    """[z, condition] -> (channels, frames): dense to frames/8, then 3 x (concat condition, transposed conv
    x2 in time, LeakyReLU), then a 1x1 convolution and tanh."""

    def __init__(self, in_dim: int, cond_dim: int, channels: int, frames: int, width: int):
        super().__init__()
        if frames % 8:
            raise TunesmithError(f"data.frames must be a multiple of 8, got {frames}")
        self.t0, self.width = frames // 8, width
        self.dense = nn.Linear(in_dim + cond_dim, width * self.t0)
        self.ups = nn.ModuleList(nn.ConvTranspose1d(width + cond_dim, width, 4, 2, 1) for _ in range(3))
        self.out = nn.Conv1d(width + cond_dim, channels, 3, padding=1)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.dense(torch.cat([z, c], 1)), 0.2).view(len(z), self.width, self.t0)
        for up in self.ups:
            h = F.leaky_relu(up(torch.cat([h, c[:, :, None].expand(-1, -1, h.shape[-1])], 1)), 0.2)
        return torch.tanh(self.out(torch.cat([h, c[:, :, None].expand(-1, -1, h.shape[-1])], 1)))


class DownEncoder(nn.Module):
    """(channels [+ condition], frames) -> flat features: 3 strided convolutions over time (x1/8)."""

    def __init__(self, in_ch: int, frames: int, width: int, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_ch
        for _ in range(3):
            layers += [nn.Conv1d(c, width, 5, 2, 2), nn.LeakyReLU(0.2)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            c = width
        self.net = nn.Sequential(*layers)
        self.n_out = width * (frames // 8)

    def forward(self, x):
        return self.net(x).flatten(1)


@register_model("harmonic_cvae")
class HarmonicCVAE(CondMixin, TunesmithModel):
    objective = "variational"
    page_kind = "audio"

    def __init__(self, channels: int, frames: int, num_labels: int, pitch_range: list[int] | None = None,
                 latent_dim: int = 16, width: int = 128, beta: float = 1.0, kl_warmup_steps: int = 0):
        super().__init__()
        if num_labels < 1:
            raise TunesmithError("harmonic_cvae needs labelled notes (instrument families)")
        self.num_labels, self.latent_dim, self.beta, self.kl_warmup_steps = num_labels, latent_dim, beta, kl_warmup_steps
        self.encoder = DownEncoder(channels + self.cond_dim, frames, width)
        self.z_mean = nn.Linear(self.encoder.n_out, latent_dim)
        self.z_log_var = nn.Linear(self.encoder.n_out, latent_dim)
        self.decoder = UpDecoder(latent_dim, self.cond_dim, channels, frames, width)
        # the "family" prior, fitted by on_checkpoint and saved with the weights; a run saved without these
        # buffers loads them as N(0, I) (OPTIONAL_STATE), so it samples as before
        self.register_buffer("prior_mean", torch.zeros(num_labels, latent_dim))
        self.register_buffer("prior_std", torch.ones(num_labels, latent_dim))

    #: buffers a checkpoint may lack (training/checkpoint.py keeps the model's initial values for them)
    OPTIONAL_STATE = ("prior_mean", "prior_std")
    PRIORS = ("family", "standard")
    #: sample options that take one of a few names: checked in configs (schema.py) and listed by --help-model
    CONTROL_CHOICES = {"prior": PRIORS}

    @torch.no_grad()
    def encode_items(self, data, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means of every item of a dataset (``image``, ``label``, ``pitch``) and their labels."""
        was = self.training
        self.eval()
        codes, labels = [], []
        for i in range(0, len(data), batch_size):
            b = data.batch(torch.arange(i, min(i + batch_size, len(data))))
            lab = b["label"].to(self.device)
            mu, _ = self.encode(b["image"].to(self.device).float(), self.cond_vector(lab, b["pitch"].to(self.device)))
            codes.append(mu.float().cpu())
            labels.append(b["label"].cpu())
        self.train(was)
        return torch.cat(codes), torch.cat(labels)

    @torch.no_grad()
    def fit_prior(self, data) -> dict:
        """Per family: mean and (population) standard deviation of the training notes' posterior means; a
        family without notes keeps N(0, I)."""
        codes, labels = self.encode_items(data)
        mean, std = torch.zeros(self.num_labels, self.latent_dim), torch.ones(self.num_labels, self.latent_dim)
        for f in range(self.num_labels):
            c = codes[labels == f]
            if len(c) >= 2:
                mean[f], std[f] = c.mean(0), c.std(0, unbiased=False).clamp_min(1e-4)
        self.prior_mean.copy_(mean.to(self.prior_mean))
        self.prior_std.copy_(std.to(self.prior_std))
        return {"items": int(len(codes)), "mean_norm": [round(float(m.norm()), 3) for m in mean],
                "std_mean": [round(float(s.mean()), 3) for s in std]}

    def on_checkpoint(self, ctx) -> None:
        self.fit_prior(ctx.data)

    def encode(self, x, c):
        h = self.encoder(torch.cat([x, c[:, :, None].expand(-1, -1, x.shape[-1])], 1))
        return self.z_mean(h), self.z_log_var(h).clamp(-10, 10)

    def forward(self, batch, mode: str = "loss", step: int = 0):
        x = batch["image"]
        c = self.cond_vector(batch["label"], batch["pitch"])
        mu, logvar = self.encode(x, c)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        y = self.decoder(z, c).float()
        recon = ((y - x) ** 2).sum(dim=(1, 2)).mean()
        kl_term, kl = gaussian_kl_loss(mu, logvar, self.beta, step, self.kl_warmup_steps)
        return {"loss": recon + kl_term, "recon": recon, "kl": kl}

    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, condition: str | None = None,
                 pitch: int | None = None, temperature: float = 1.0, denoise: bool | float = False,
                 prior: str = "family"):
        if prior not in self.PRIORS:
            raise TunesmithError(f"prior must be one of {', '.join(self.PRIORS)}, got {prior!r}")
        labels, pitches = self._requests(codec, n, condition, pitch)
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device) * temperature
        if prior == "family":
            lab = labels.to(self.device)
            z = self.prior_mean[lab].float() + self.prior_std[lab].float() * z
        imgs = self.decoder(z, self.cond_vector(labels.to(self.device), pitches.to(self.device)))
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=self.device))
        return self._to_audio(codec, imgs, labels, pitches, seed, denoise)


class AuxCritic(nn.Module):
    """Strided convolutions -> a Wasserstein score, pitch logits (128 MIDI pitches) and family logits."""

    def __init__(self, channels: int, frames: int, num_labels: int, width: int, dropout: float):
        super().__init__()
        self.body = DownEncoder(channels, frames, width, dropout)
        self.adv = nn.Linear(self.body.n_out, 1)
        self.pitch = nn.Linear(self.body.n_out, 128)
        self.family = nn.Linear(self.body.n_out, num_labels)

    def forward(self, x):
        h = self.body(x)
        return self.adv(h).squeeze(1), self.pitch(h), self.family(h)


class CondGenerator(nn.Module):
    def __init__(self, latent_dim, cond_dim, channels, frames, width):
        super().__init__()
        self.net = UpDecoder(latent_dim, cond_dim, channels, frames, width)

    def forward(self, z, c):
        return self.net(z, c)


@register_model("harmonic_gan")
class HarmonicGAN(CondMixin, TunesmithModel):
    objective = "adversarial"
    page_kind = "audio"

    def __init__(self, channels: int, frames: int, num_labels: int, pitch_range: list[int] | None = None,
                 latent_dim: int = 32, width: int = 128, critic_width: int = 128, dropout: float = 0.0,
                 gp_weight: float = 10.0, aux_weight: float = 1.0):
        super().__init__()
        if num_labels < 1:
            raise TunesmithError("harmonic_gan needs labelled notes (instrument families)")
        self.num_labels, self.latent_dim, self.gp_weight, self.aux_weight = num_labels, latent_dim, gp_weight, aux_weight
        self.generator = CondGenerator(latent_dim, self.cond_dim, channels, frames, width)
        self.critic = AuxCritic(channels, frames, num_labels, critic_width, dropout)

    def _fake(self, batch):
        label, pitch = batch["label"], batch["pitch"]
        z = torch.randn(len(label), self.latent_dim, device=label.device)
        return self.generator(z, self.cond_vector(label, pitch))

    def forward(self, batch, mode: str = "critic", step: int = 0):
        real, label, pitch = batch["image"], batch["label"], batch["pitch"]
        if mode == "critic":
            with torch.no_grad():
                fake = self._fake(batch)
            s_real, p_real, f_real = self.critic(real)
            s_fake, _, _ = self.critic(fake)
            a = torch.rand(len(real), 1, 1, device=real.device)
            mix = (a * real + (1 - a) * fake).requires_grad_(True)
            g, = torch.autograd.grad(self.critic(mix)[0].sum(), mix, create_graph=True)
            gp = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
            aux_p, aux_f = F.cross_entropy(p_real, pitch), F.cross_entropy(f_real, label)
            wd = s_real.mean() - s_fake.mean()
            loss = -wd + self.gp_weight * gp + self.aux_weight * (aux_p + aux_f)
            return {"loss": loss, "wasserstein": wd, "gp": gp, "aux_pitch": aux_p, "aux_family": aux_f,
                    "pitch_acc": (p_real.argmax(1) == pitch).float().mean(),
                    "family_acc": (f_real.argmax(1) == label).float().mean()}
        if mode == "generator":
            s, p_logits, f_logits = self.critic(self._fake(batch))
            aux = F.cross_entropy(p_logits, pitch) + F.cross_entropy(f_logits, label)
            return {"loss": -s.mean() + self.aux_weight * aux, "aux": aux,
                    "pitch_acc": (p_logits.argmax(1) == pitch).float().mean()}
        raise ValueError(f"HarmonicGAN has no mode {mode!r}")

    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, condition: str | None = None,
                 pitch: int | None = None, temperature: float = 1.0, denoise: bool | float = False):
        labels, pitches = self._requests(codec, n, condition, pitch)
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device) * temperature
        imgs = self.generator(z, self.cond_vector(labels.to(self.device), pitches.to(self.device)))
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=self.device))
        return self._to_audio(codec, imgs, labels, pitches, seed, denoise)
