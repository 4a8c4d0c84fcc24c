"""A GAN with rhythm: our one-hot WGAN-GP (:mod:`.gan_onehot`) over the Essen LSTM's time-step symbols.

The data is the melody VAE's (``data.encoding = "melody_phrases"``): the Erk songs the LSTM trains on (same
filter, transposition to C major / A minor, split by song and vocabulary), cut into phrases of ``bars`` x 16
sixteenth-note steps. Each step is one symbol -- a MIDI pitch where a note starts, ``r`` where a rest starts,
``_`` while the previous note or rest is held -- so the generator has to learn *when* notes start (rhythm)
as well as which pitch they have. The seed-000 GAN and our ``gan_onehot`` only ever make equal half-beat notes.

Model: :class:`~tunesmith.models.gan_onehot.OneHotWGAN` unchanged in spirit (Gulrajani et al. 2017's recipe
for discrete sequences): the generator maps a latent vector through ConvTranspose1d layers to a softmax over
the vocabulary at every step, the critic (Conv1d) reads one-hot real phrases and softmax fakes, WGAN-GP loss.
What this class adds:

* the vocabulary's delimiter ``/`` (id 0 of every time-step vocabulary; it never occurs inside a phrase, and
  the codec stops decoding at it) gets a fixed logit of -1e4, so the generator never emits it;
* ``generate`` decodes by **argmax** (the generator's trained output; ``--temperature T`` samples each step
  from the softmax at temperature T instead) and makes ``steps`` 16th notes by chaining independent phrases;
* decoding goes through the time-step codec, whose rules make every symbol string valid: a hold after a rest
  lengthens the rest, a leading hold is a rest.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import register_model
from .gan_onehot import OneHotWGAN, SeqCritic, SoftmaxSeqGenerator

DELIMITER_ID = 0  # TimeStepCodec.from_corpus puts '/' first


class MaskedSoftmaxGenerator(SoftmaxSeqGenerator):
    """:class:`SoftmaxSeqGenerator` whose banned symbols get a fixed logit of -1e4 (probability ~0)."""

    def __init__(self, latent: int, vocab: int, seq_len: int, channels: int, banned=(DELIMITER_ID,)):
        super().__init__(latent, vocab, seq_len, channels)
        bias = torch.zeros(vocab)
        bias[list(banned)] = -1e4
        self.register_buffer("logit_bias", bias, persistent=False)

    def logits(self, z):  # (B, V, T)
        h = self.fc(z).view(len(z), self.c, self.t0)
        return self.net(h) + self.logit_bias[:, None]

    def forward(self, z):
        return torch.softmax(self.logits(z), 1).transpose(1, 2)  # (B, T, V)


@register_model("gan_rhythm")
class RhythmWGAN(OneHotWGAN):
    """One-hot WGAN-GP over phrases of ``phrase_len`` time-step symbols (pitch / hold / rest per 16th)."""

    CONTROL_NOTES = {
        "temperature": "unset: argmax of the generator's softmax (how it was trained and measured); "
                       "> 0: sample each 16th from the softmax at this temperature",
        "steps": "16th-note steps to make (default one phrase); longer pieces chain independent phrases",
    }

    def __init__(self, vocab_size: int, phrase_len: int = 64, steps_per_bar: int = 16, latent_dim: int = 128,
                 channels: int = 256, loss: str = "wgan-gp", gp_weight: float = 10.0):
        super().__init__(vocab_size, phrase_len, latent_dim, channels, loss, gp_weight)
        self.steps_per_bar = int(steps_per_bar)
        self.generator = MaskedSoftmaxGenerator(self.latent_dim, int(vocab_size), self.seq_len, channels)
        self.critic = SeqCritic(int(vocab_size), self.seq_len, channels)

    @torch.no_grad()
    def sample_ids(self, n: int, generator: torch.Generator | None = None, temperature: float | None = None,
                   steps: int | None = None) -> torch.Tensor:
        """(n, steps) symbol ids: argmax (``temperature`` None) or softmax samples, phrases chained."""
        steps = int(steps or self.seq_len)
        k = max(1, math.ceil(steps / self.seq_len))
        z = torch.randn(n * k, self.latent_dim, device=self.device, generator=generator)
        logits = self.generator.logits(z).transpose(1, 2)  # (n*k, T, V)
        if temperature is None:
            ids = logits.argmax(-1)
        else:
            p = torch.softmax(logits / float(temperature), -1).reshape(-1, logits.shape[-1])
            ids = torch.multinomial(p, 1, generator=generator).view(n * k, self.seq_len)
        return ids.reshape(n, k * self.seq_len)[:, :steps].cpu()

    @torch.no_grad()
    def generate(self, codec, n: int, generator: torch.Generator | None = None, tempo: float = 120.0,
                 temperature: float | None = None, steps: int | None = None):
        return [codec.decode(r, tempo=tempo) for r in self.sample_ids(n, generator, temperature, steps).tolist()]


def edit_distances(ids) -> "np.ndarray":
    """Levenshtein distance between every pair of equal-length symbol sequences (n, L) -> (n*(n-1)/2,),
    vectorised over the pairs (the dynamic programme runs over positions)."""
    import numpy as np

    ids = np.asarray(ids)
    n, L = ids.shape
    i, j = np.triu_indices(n, 1)
    a, b = ids[i], ids[j]
    prev = np.tile(np.arange(L + 1), (len(i), 1))
    for r in range(1, L + 1):
        cur = np.empty_like(prev)
        cur[:, 0] = r
        sub = (a[:, r - 1:r] != b).astype(prev.dtype)  # (P, L): cost of matching a[r-1] with b[c-1]
        for c in range(1, L + 1):
            cur[:, c] = np.minimum(np.minimum(prev[:, c] + 1, cur[:, c - 1] + 1), prev[:, c - 1] + sub[:, c - 1])
        prev = cur
    return prev[:, L]


def distinctness(ids, train_ids=None) -> dict:
    """How different generated phrases (n, L) are from each other and from the training phrases:
    ``distinct`` share of unique samples, ``pairwise_edit`` mean Levenshtein distance between samples as a
    fraction of L, ``copies`` share of samples identical to a training phrase, ``nearest_train`` mean
    Hamming distance (fraction of L) from each sample to its nearest training phrase."""
    import numpy as np

    ids = np.asarray(ids)
    n, L = ids.shape
    out = {"distinct": round(len(np.unique(ids, axis=0)) / n, 4),
           "pairwise_edit": round(float(edit_distances(ids).mean()) / L, 4) if n > 1 else 0.0}
    if train_ids is not None:
        tr = torch.as_tensor(np.asarray(train_ids)[:, :L])
        x = torch.as_tensor(ids)
        near = torch.stack([(row[None] != tr).sum(1).min() for row in x]).numpy()
        out["copies"] = round(float((near == 0).mean()), 4)
        out["nearest_train"] = round(float(near.mean()) / L, 4)
    return out
