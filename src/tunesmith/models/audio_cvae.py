"""Seed 003's conditional VAE on raw audio, conditioned on the instrument family (or genre).

Encoder: the waveform plus the condition (one-hot, broadcast over time as extra channels) -> 1-D
convolutions (stride ``stride``, ReLU) -> flatten -> two dense layers: z_mean and z_log_var; z by the
reparameterisation trick. Decoder: [z, one-hot condition] -> dense -> reshape -> transposed 1-D
convolutions (ReLU) -> the output activation. The seed's output is a sigmoid; audio in [-1, 1] is then
modelled as (x + 1) / 2 (``output = "sigmoid"``, the default, faithful); ``output = "tanh"`` models x
directly. Loss: squared error summed over the clip's samples + ``beta`` x KL (summed over latent
dimensions), averaged over the batch; ``kl_warmup_steps`` steps ramp beta up linearly.

``tunesmith sample RUN --condition brass`` draws z ~ N(0, temperature^2) and decodes it with that family;
without ``--condition`` the samples cycle through the known families.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.audio import postprocess
from ..errors import TunesmithError
from .base import Audio, TunesmithModel, gaussian_kl_loss, register_model


@register_model("audio_cvae")
class AudioCVAE(TunesmithModel):
    objective = "variational"
    page_kind = "audio"

    def __init__(self, num_samples: int, num_labels: int, sample_rate: int = 16000, latent_dim: int = 64,
                 channels: list[int] = (16, 32, 64, 128), kernel_size: int = 9, stride: int = 4,
                 beta: float = 1.0, kl_warmup_steps: int = 0, output: str = "sigmoid"):
        super().__init__()
        if output not in ("sigmoid", "tanh"):
            raise TunesmithError(f"model.output must be 'sigmoid' (the seed's) or 'tanh', not {output!r}")
        if num_labels < 1:
            raise TunesmithError("the CVAE needs labelled clips (instrument families or genres)")
        self.num_labels, self.latent_dim, self.beta, self.kl_warmup_steps = num_labels, latent_dim, beta, kl_warmup_steps
        self.output, self.num_samples = output, num_samples
        chans = list(channels)
        f = stride ** len(chans)
        self.padded = -(-num_samples // f) * f
        self.frames, self.top = self.padded // f, chans[-1]
        enc: list[nn.Module] = []
        c_in = 1 + num_labels
        for c in chans:
            enc += [nn.Conv1d(c_in, c, kernel_size, stride, padding=kernel_size // 2), nn.ReLU()]
            c_in = c
        self.encoder = nn.Sequential(*enc)
        with torch.no_grad():
            n_flat = self.encoder(torch.zeros(1, 1 + num_labels, self.padded)).numel()
        self.z_mean = nn.Linear(n_flat, latent_dim)
        self.z_log_var = nn.Linear(n_flat, latent_dim)
        self.dense = nn.Linear(latent_dim + num_labels, self.top * self.frames)
        dec: list[nn.Module] = []
        rev = chans[::-1][1:] + [1]
        c_in = self.top
        for i, c in enumerate(rev):
            dec.append(nn.ConvTranspose1d(c_in, c, 2 * stride, stride, padding=stride // 2))
            if i < len(rev) - 1:
                dec.append(nn.ReLU())
            c_in = c
        self.decoder = nn.Sequential(*dec)

    def _onehot(self, label: torch.Tensor) -> torch.Tensor:
        return F.one_hot(label, self.num_labels).float()

    def encode(self, x: torch.Tensor, label: torch.Tensor):
        x = F.pad(x, (0, self.padded - x.shape[-1]))
        c = self._onehot(label)[:, :, None].expand(-1, -1, x.shape[-1])
        h = self.encoder(torch.cat([x, c], 1)).flatten(1)
        return self.z_mean(h), self.z_log_var(h)

    def decode(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """-> (B, 1, num_samples) audio in [-1, 1]."""
        h = F.relu(self.dense(torch.cat([z, self._onehot(label)], 1))).view(len(z), self.top, self.frames)
        y = self.decoder(h)[..., : self.num_samples]
        return torch.sigmoid(y) * 2 - 1 if self.output == "sigmoid" else torch.tanh(y)

    def forward(self, batch, mode: str = "loss", step: int = 0):
        x, label = batch["audio"], batch["label"]
        mu, logvar = self.encode(x, label)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        y = self.decode(z, label).float()
        if self.output == "sigmoid":  # the seed's target: audio mapped to [0, 1]
            recon = (((y + 1) / 2 - (x + 1) / 2) ** 2).sum(dim=(1, 2)).mean()
        else:
            recon = ((y - x) ** 2).sum(dim=(1, 2)).mean()
        kl_term, kl = gaussian_kl_loss(mu, logvar, self.beta, step, self.kl_warmup_steps)
        return {"loss": recon + kl_term, "recon": recon, "kl": kl}

    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, condition: str | None = None,
                 temperature: float = 1.0, denoise: bool | float = False):
        if condition is not None:
            idx = codec.label_index(condition)
            labels = torch.full((n,), idx, dtype=torch.long)
        else:
            labels = torch.arange(n) % self.num_labels
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device) * temperature
        y = self.decode(z, labels.to(self.device)).squeeze(1).cpu().numpy()
        names = [codec.labels[int(i)] if int(i) < len(codec.labels) else str(int(i)) for i in labels]
        return [Audio(postprocess(s, codec.sample_rate, denoise), codec.sample_rate, nm) for s, nm in zip(y, names)]
