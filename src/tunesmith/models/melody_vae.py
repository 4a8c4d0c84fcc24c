"""A recurrent melody VAE after MusicVAE (Roberts et al. 2018), over the LSTM's time-step symbols.

* **Encoder**: embedding -> bidirectional LSTM over the phrase; the last states of both directions ->
  ``mu`` and ``logvar`` of a ``latent_dim``-dimensional Gaussian.
* **Decoder** (``decoder = "flat"``): an LSTM whose initial state is ``tanh(W z)`` and whose input at each
  step is the previous symbol (teacher forcing in training) concatenated with ``z``; a softmax over the
  vocabulary. ``decoder = "hierarchical"``: a *conductor* LSTM turns ``z`` into one embedding per
  section (``sections``, default one per bar); the same bottom LSTM decodes each section from its
  embedding (state re-initialised at every section, embedding concatenated to the input), so it cannot
  carry a whole phrase on its own and has to listen to the latent code -- MusicVAE's answer to posterior
  collapse on long sequences.
* **Loss**: cross-entropy summed over the phrase + ``beta_t`` x max(KL - ``free_bits`` nats, 0) per item,
  ``beta_t`` ramped from 0 to ``beta`` over ``kl_warmup_steps``. ``word_dropout`` replaces that fraction of
  the decoder's input symbols by a blank, so the decoder cannot copy the next symbol from the previous
  ones alone.
* **Attribute-regularised latents** (``attr_reg`` > 0; AR-VAE, Pati & Lerch 2020): latent dimension ``k``
  is tied to attribute ``k`` of :data:`ATTRIBUTES` by the extra loss ``attr_reg`` x sum over attributes of
  the mean over pairs (i, j) of the batch of ``|tanh(attr_reg_delta (z_k[i] - z_k[j])) - sign(a_k[i] -
  a_k[j])|`` (:func:`attribute_reg_loss`), which orders the codes along that dimension by the attribute.
  ``attr_code_dropout``: that share of the training items is decoded from its attribute dimensions alone
  (the other dimensions set to 0, the prior's mean; the five detached, so these items train the decoder
  only), so the decoder learns to make a phrase with the attributes those five dimensions say when the rest
  of the code is at the centre -- what an attribute slider asks of it.

* **Attribute-conditioned decoding** (``attr_condition = true``): the decoder reads the phrase's five
  attributes (computed from its symbols, scaled by :data:`ATTR_CENTRE` / :data:`ATTR_SCALE`) next to ``z``:
  the code is ``z`` (``z_dim`` = the config's ``latent_dim``, Gaussian, the only part the KL sees) followed by
  the five numbers (``latent_dim`` = the code's width), which ``encode`` computes exactly. An attribute slider
  sets one of those numbers (from the training phrases' mean, in their standard deviations, stopping at their
  0.5 % / 99.5 % quantiles), so it asks the decoder for what it was trained to follow, not for a direction
  in ``z``; a prior sample draws ``z`` from N(0, I) and its attributes from a bank of training phrases'
  (:meth:`prior_codes`). Reconstruction and interpolation carry the attributes in the code like any other
  dimension. ``attr_code_dropout`` here decodes that share of the items from their attributes alone (``z`` = 0),
  and the sliders then start at ``z`` = 0. ``attr_adversary``: a regressor learns the attributes from ``z``
  and the encoder pays for the variance it explains, so ``z`` stops carrying them.
* **Slider decoding** (``slider_temperature`` > 0): :meth:`decode` (the web page's) draws at that temperature
  from noise fixed by ``slider_seed``, the same for every code, instead of taking the argmax, whose phrase
  from the sliders' centre is a near-constant line. ``slider_steer`` w in (0, 1] (attr_condition) decodes
  with the logits ``(1 - w) l(z, a) + w l(0, a)``, the code's own and those of its attributes alone
  (:meth:`steering_codes`), so an attribute slider moves its attribute from any point of the latent sliders
  too, where the decoder otherwise takes the range from ``z`` and ignores the input. ``slider_steer_from`` r:
  w grows from 0 (every attribute slider at its centre: the latent sliders act fully) to ``slider_steer`` once
  an attribute slider is r standard deviations away (:meth:`steering_weights`).
* **Key lock** (``key_lock``): new melodies (prior samples, slider positions) are drawn twice with the same
  noise, the second time with every pitch masked that is neither in the major (= natural minor) scale the
  first draw fits best nor its minor's raised leading tone (:meth:`key_masks`): a code between the five
  training keys (transposition -2..+2) mixes them.

**Condition labels** (a codec trained with ``data.condition``, CVAE style; docs/conditioning.md "Melody VAE"):
each kind's label (``<metre=3/4>``, ``<mode=minor>``; one more **null** slot per kind) has an embedding of
``label_dim``; their sum ``y`` joins the encoder's pooled states (q(z | x, y)) and the decoder's initial state,
and is added, with the **position in the bar** (steps since the song's start modulo the metre's bar length;
``bar_positions``), to the decoder's input at every step. ``label_dropout``: each kind's label of a training
phrase is null with that probability, so the same model samples without a condition. ``tunesmith sample RUN
--condition metre=3/4,mode=minor``. Without labels in the codec the model is exactly the unconditioned one.

**Sliders** (``on_checkpoint``, stored as buffers in the weights): the ``n_sliders`` latent dimensions
with the largest spread over the encoded training phrases (seed 001's sliders, in standard deviations)
and MusicVAE-style *attribute vectors*: for each of :data:`ATTRIBUTES` (note density, pitch height,
range, stepwise motion, rests), the mean code of the training phrases in the top quarter of that
attribute minus the mean code of the bottom quarter. An attribute slider moves the code along that
direction, in standard deviations of the codes' projection on it. With ``attr_reg`` > 0 the attribute
slider moves the attribute's own latent dimension instead (from the mean code, in standard deviations of
that dimension over the training codes): ``attr_dirs`` holds the unit vectors of those dimensions.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TunesmithError
from .autoencoder import SLIDER_RANGE, RollAutoencoder
from .base import TunesmithModel, register_model

ATTRIBUTES = ("note_density", "pitch_height", "pitch_range", "stepwise_motion", "rests")
ATTRIBUTE_LABELS = {"note_density": "note density (notes per bar)", "pitch_height": "pitch height (mean MIDI pitch)",
                    "pitch_range": "range (semitones)", "stepwise_motion": "stepwise motion (share of steps of 1-2 semitones)",
                    "rests": "rests (share of time)"}
# attr_condition's input scaling: about the mean and standard deviation of each attribute over the Essen Erk
# training phrases (4 bars, transposed +-2), so the decoder sees numbers near unit scale
ATTR_CENTRE = np.array([4.8, 63.2, 10.0, 0.5, 0.045])
ATTR_SCALE = np.array([1.5, 3.0, 3.0, 0.19, 0.05])
# key_lock: the major scale (= natural minor) on each tonic (row) over the 12 pitch classes, and what a locked
# phrase may play in it: the scale and the raised leading tone of its relative minor (G# for C major / A minor)
MAJOR_SCALES = np.array([[(pc - k) % 12 in (0, 2, 4, 5, 7, 9, 11) for pc in range(12)] for k in range(12)])
KEY_LOCK_PITCHES = MAJOR_SCALES | np.array([[(pc - k) % 12 == 8 for pc in range(12)] for k in range(12)])


def phrase_attributes(ids: np.ndarray, pitch_table: np.ndarray, steps_per_bar: int = 16,
                      rest_id: int | None = None, hold_id: int | None = None) -> np.ndarray:
    """(N, L) phrase ids -> (N, 5) attributes in :data:`ATTRIBUTES` order. A phrase without notes has
    pitch height and range 0; with fewer than two notes, stepwise motion 0."""
    ids = np.asarray(ids)
    if ids.ndim == 1:
        ids = ids[None]
    n, L = ids.shape
    p = pitch_table[ids]                               # -1 for non-pitch symbols
    is_note = p >= 0
    count = is_note.sum(1)
    out = np.zeros((n, len(ATTRIBUTES)))
    out[:, 0] = count / (L / steps_per_bar)
    for i in range(n):
        ps = p[i][is_note[i]]
        if len(ps):
            out[i, 1] = ps.mean()
            out[i, 2] = ps.max() - ps.min()
        if len(ps) > 1:
            d = np.abs(np.diff(ps))
            out[i, 3] = ((d >= 1) & (d <= 2)).mean()
    if rest_id is not None:  # share of time in rests: a rest symbol and the holds after it (and a leading hold)
        pos = np.where(ids != hold_id, np.arange(L)[None], -1)
        last = np.maximum.accumulate(pos, axis=1)
        sounding = np.take_along_axis(ids, np.maximum(last, 0), 1)
        out[:, 4] = ((last < 0) | (sounding == rest_id)).mean(1)
    return out


def attribute_reg_loss(z: torch.Tensor, attrs: torch.Tensor, delta: float = 10.0) -> torch.Tensor:
    """AR-VAE's attribute regulariser (Pati & Lerch 2020): codes (B, K) in the attributes' dimensions and
    attributes (B, K) -> (K,) losses, each the mean over all B x B pairs of
    ``|tanh(delta (z[i] - z[j])) - sign(a[i] - a[j])|`` (0 when the codes are ordered like the attributes
    and far apart relative to 1 / delta; 2 when every pair is ordered the wrong way)."""
    dz = z[:, None, :] - z[None, :, :]
    da = attrs[:, None, :] - attrs[None, :, :]
    return (torch.tanh(delta * dz) - torch.sign(da)).abs().mean((0, 1))


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties); 0 when either side is constant."""
    def rankdata(a):
        a = np.asarray(a, float)
        order = np.argsort(a, kind="stable")
        r = np.empty(len(a))
        r[order] = np.arange(1, len(a) + 1)
        for v in np.unique(a):  # ties share their average rank
            tie = a == v
            r[tie] = r[tie].mean()
        return r

    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


@register_model("melody_vae")
class MelodyVAE(TunesmithModel):
    objective = "variational"
    page_kind = "vae"
    loss_unit = "nats/phrase"
    output = "softmax"  # one categorical choice per step (the web page shows no note threshold)

    def __init__(self, vocab_size: int, phrase_len: int = 64, steps_per_bar: int = 16, embed_dim: int = 32,
                 enc_hidden: int = 256, dec_hidden: int = 512, dec_layers: int = 1, latent_dim: int = 64,
                 decoder: str = "flat", sections: int | None = None, conductor_hidden: int = 256,
                 beta: float = 0.2, free_bits: float = 48.0, kl_warmup_steps: int = 1000, word_dropout: float = 0.0,
                 autoregressive: bool = True, init_logvar: float = 0.0, encoder_pool: str = "last", dropout: float = 0.0, n_sliders: int = 20,
                 slider_items: int = 4096, attr_reg: float = 0.0, attr_reg_delta: float = 10.0,
                 attr_code_dropout: float = 0.0, vocab: list | None = None, label_groups: dict | None = None,
                 bar_steps: dict | None = None, label_dim: int = 32, label_dropout: float = 0.1,
                 bar_positions: bool = True, label_adversary: float = 0.0, attr_condition: bool = False,
                 attr_adversary: float = 0.0, slider_temperature: float = 0.0, slider_seed: int = 0,
                 slider_steer: float = 0.0, slider_steer_from: float = 0.0, key_lock: bool = False):
        super().__init__()
        attr_reg, attr_reg_delta = float(attr_reg), float(attr_reg_delta)
        if not (np.isfinite(attr_reg) and attr_reg >= 0):
            raise TunesmithError(f"model.attr_reg must be a number >= 0 (0: off), not {attr_reg}")
        if not (np.isfinite(attr_reg_delta) and attr_reg_delta > 0):
            raise TunesmithError(f"model.attr_reg_delta must be a number > 0, not {attr_reg_delta}")
        if attr_reg > 0 and int(latent_dim) < len(ATTRIBUTES):
            raise TunesmithError(f"model.attr_reg needs latent_dim >= {len(ATTRIBUTES)} (one dimension per attribute)")
        attr_code_dropout = float(attr_code_dropout)
        if not 0 <= attr_code_dropout < 1:
            raise TunesmithError(f"model.attr_code_dropout must be in [0, 1), not {attr_code_dropout}")
        if attr_code_dropout > 0 and attr_reg <= 0 and not attr_condition:
            raise TunesmithError("model.attr_code_dropout needs model.attr_reg > 0 or model.attr_condition "
                                 "(it keeps only the attributes)")
        self.attr_reg, self.attr_reg_delta, self.attr_code_dropout = attr_reg, attr_reg_delta, attr_code_dropout
        self.attr_condition = bool(attr_condition)
        if self.attr_condition and attr_reg > 0:
            raise TunesmithError("model.attr_condition and model.attr_reg are two ways to make attribute sliders: "
                                 "set one of them")
        if self.attr_condition and label_groups:
            raise TunesmithError("model.attr_condition does not combine with condition labels (data.condition) yet")
        self.attr_adversary = float(attr_adversary)
        # how a slider position is decoded (decode(), the web page): argmax (0), or a draw at this temperature
        # with the same noise for every position (slider_seed), so a position always gives the same melody
        self.slider_temperature, self.slider_seed = float(slider_temperature), int(slider_seed)
        if not (np.isfinite(self.slider_temperature) and self.slider_temperature >= 0):
            raise TunesmithError(f"model.slider_temperature must be a number >= 0 (0: argmax), not {slider_temperature}")
        # attr_condition: the weight of the attributes-alone expert in a slider position's logits (steering_codes)
        self.slider_steer = float(slider_steer)
        if not (np.isfinite(self.slider_steer) and 0 <= self.slider_steer <= 1):
            raise TunesmithError(f"model.slider_steer must be a number from 0 (off) to 1, not {slider_steer}")
        if self.slider_steer > 0 and not self.attr_condition:
            raise TunesmithError("model.slider_steer needs model.attr_condition = true (it steers the attribute inputs)")
        # > 0: the steering weight grows from 0 (every attribute slider at its centre) to slider_steer (one of them
        # this many standard deviations away or more), so the latent sliders act fully until an attribute moves
        self.slider_steer_from = float(slider_steer_from)
        if not (np.isfinite(self.slider_steer_from) and 0 <= self.slider_steer_from <= 10):
            raise TunesmithError(f"model.slider_steer_from must be a number from 0 to 10 (standard deviations), "
                                 f"not {slider_steer_from}")
        # new melodies (prior samples, slider positions) stay in one major / natural minor scale (key_masks)
        self.key_lock = bool(key_lock)
        if not (np.isfinite(self.attr_adversary) and self.attr_adversary >= 0):
            raise TunesmithError(f"model.attr_adversary must be a number >= 0 (0: off), not {attr_adversary}")
        if self.attr_adversary > 0 and not self.attr_condition:
            raise TunesmithError("model.attr_adversary needs model.attr_condition = true (it keeps the attributes out of z)")
        # the symbol table the attributes need (the codec's vocabulary, passed by model_info)
        self._attr_tables = None
        if vocab is not None:
            vocab = [str(v) for v in vocab]
            self._attr_tables = (np.array([int(v) if v.isdigit() else -1 for v in vocab]),
                                 vocab.index("r") if "r" in vocab else None, vocab.index("_") if "_" in vocab else None)
        if (attr_reg > 0 or self.attr_condition) and self._attr_tables is None:
            which = "attr_reg" if attr_reg > 0 else "attr_condition"
            raise TunesmithError(f"model.{which} needs the codec's vocabulary (data.encoding = 'melody_phrases')")
        if encoder_pool not in ("last", "bars"):
            raise TunesmithError(f"model.encoder_pool must be 'last' or 'bars', not {encoder_pool!r}")
        if decoder not in ("flat", "hierarchical"):
            raise TunesmithError(f"model.decoder must be 'flat' or 'hierarchical', not {decoder!r}")
        self.vocab_size, self.phrase_len, self.steps_per_bar = int(vocab_size), int(phrase_len), int(steps_per_bar)
        # the code the decoder reads: the latent z and, with attr_condition, the phrase's five attributes
        # (normalised) after it; latent_dim is the code's width, z_dim the Gaussian part's
        self.z_dim = int(latent_dim)
        self.latent_dim = self.z_dim + (len(ATTRIBUTES) if self.attr_condition else 0)
        self.decoder_kind = decoder
        self.sections = int(sections or max(1, phrase_len // steps_per_bar))
        if decoder == "hierarchical" and self.phrase_len % self.sections:
            raise TunesmithError(f"model.sections ({self.sections}) must divide the phrase length {phrase_len}")
        self.beta, self.free_bits, self.kl_warmup_steps = float(beta), float(free_bits), int(kl_warmup_steps)
        self.word_dropout = float(word_dropout)
        self.n_sliders, self.slider_items = min(int(n_sliders), self.latent_dim), int(slider_items)
        self.slider_basis_kind = "std"
        V = self.vocab_size
        self.start_id, self.blank_id = V, V + 1
        self.embed = nn.Embedding(V + 2, embed_dim)
        self.encoder = nn.LSTM(embed_dim, enc_hidden, batch_first=True, bidirectional=True)
        self.encoder_pool = encoder_pool
        if encoder_pool == "bars" and self.phrase_len % self.sections:
            raise TunesmithError(f"model.sections ({self.sections}) must divide the phrase length {phrase_len}")
        pooled = 2 * enc_hidden * (self.sections if encoder_pool == "bars" else 1)
        self.to_latent = nn.Linear(pooled, 2 * latent_dim)
        self.autoregressive = bool(autoregressive)
        with torch.no_grad():  # start with a narrow posterior: the code carries information from the first step
            self.to_latent.bias[latent_dim:] = float(init_logvar)
        # condition labels (a codec trained with data.condition): one embedding per label and a null per kind
        self.label_kinds = list(label_groups or {})
        self.label_adversary = 0.0
        self.label_dim = int(label_dim) if self.label_kinds else 0
        self.label_dropout = float(label_dropout)
        if not 0 <= self.label_dropout <= 1:
            raise TunesmithError(f"model.label_dropout must be in [0, 1], not {label_dropout}")
        if self.label_kinds:
            if decoder != "flat":
                raise TunesmithError("condition labels (data.condition) need model.decoder = 'flat'")
            if self.label_dim < 1:
                raise TunesmithError(f"model.label_dim must be >= 1, not {label_dim}")
            slot_of, nulls, n = torch.full((V,), -1, dtype=torch.long), [], 0
            for ids in label_groups.values():
                ids = [int(i) for i in ids]
                slot_of[ids] = torch.arange(n, n + len(ids))
                nulls.append(n + len(ids))
                n += len(ids) + 1
            self.register_buffer("label_slot_of", slot_of, persistent=False)
            self.register_buffer("label_nulls", torch.tensor(nulls), persistent=False)
            self.label_embed = nn.Embedding(n, self.label_dim)
            bar = torch.zeros(n, dtype=torch.long)      # the bar length (steps) of each metre slot, 0 otherwise
            for tok, steps in (bar_steps or {}).items():
                if int(slot_of[int(tok)]) >= 0 and 0 < int(steps) <= self.MAX_BAR:
                    bar[slot_of[int(tok)]] = int(steps)
            self.register_buffer("label_bar", bar, persistent=False)
            self.bar_positions = bool(bar_positions) and "metre" in self.label_kinds and bool(bar_steps)
            if self.bar_positions:
                self.pos_embed = nn.Embedding(self.MAX_BAR + 1, self.label_dim)  # the last: no metre
            # each label's aggregate posterior (mean and spread of the codes of the training phrases with that
            # label, filled by on_checkpoint): a conditioned prior sample draws its code from it
            self.register_buffer("label_code_mean", torch.zeros(n, latent_dim))
            self.register_buffer("label_code_std", torch.zeros(n, latent_dim))
            self.register_buffer("label_code_all", torch.zeros(latent_dim))
            # label_adversary > 0: a small classifier learns each kind's label from the code (detached), and the
            # encoder pays while it beats the label frequencies, so the code stops carrying the labels and the
            # decoder must read them from y (Lample et al. 2017's fader networks, with a hinge at chance)
            self.label_adversary = float(label_adversary)
            if not (np.isfinite(self.label_adversary) and self.label_adversary >= 0):
                raise TunesmithError(f"model.label_adversary must be a number >= 0 (0: off), not {label_adversary}")
            if self.label_adversary > 0:
                self.adversary = nn.Sequential(nn.Linear(latent_dim, 128), nn.ReLU(), nn.Linear(128, n))
            self.to_latent = nn.Linear(pooled + self.label_dim, 2 * latent_dim)
            with torch.no_grad():
                self.to_latent.bias[latent_dim:] = float(init_logvar)
        code = self.latent_dim
        cond = code + self.label_dim
        if decoder == "hierarchical":
            self.conductor_init = nn.Linear(code, 2 * conductor_hidden)
            self.conductor = nn.LSTM(code, conductor_hidden, batch_first=True)
            self.conductor_out = nn.Linear(conductor_hidden, code)
        self.dec_layers, self.dec_hidden = int(dec_layers), int(dec_hidden)
        self.dec_init = nn.Linear(cond, 2 * self.dec_layers * dec_hidden)
        self.dec = nn.LSTM(embed_dim + cond, dec_hidden, num_layers=self.dec_layers, batch_first=True,
                           dropout=dropout if dec_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dec_hidden, V)
        if self._attr_tables is not None:   # each output symbol's MIDI pitch (-1: rest, hold, control), for key_masks
            pitch = np.full(V, -1)
            pitch[: min(V, len(self._attr_tables[0]))] = self._attr_tables[0][:V]
            self.register_buffer("symbol_pitch", torch.as_tensor(pitch, dtype=torch.long), persistent=False)
        # sliders and attribute vectors, filled by on_checkpoint and saved with the weights
        self.register_buffer("latent_mean", torch.zeros(code))
        self.register_buffer("latent_std", torch.ones(code))
        self.register_buffer("slider_basis", torch.eye(code)[: self.n_sliders].clone())
        self.register_buffer("slider_scale", torch.ones(self.n_sliders))
        self.register_buffer("slider_dims", torch.arange(self.n_sliders))
        self.register_buffer("attr_dirs", torch.zeros(len(ATTRIBUTES), code))
        self.register_buffer("attr_scale", torch.zeros(len(ATTRIBUTES)))
        if self.attr_condition:
            K = len(ATTRIBUTES)
            # the attribute sliders' reach (the training phrases' 0.5 % and 99.5 % quantiles, normalised) and the
            # attributes' prior (those of ATTR_BANK training phrases, evenly spaced), fitted by on_checkpoint
            self.register_buffer("attr_lo", torch.full((K,), -3.0))
            self.register_buffer("attr_hi", torch.full((K,), 3.0))
            self.register_buffer("attr_bank", torch.zeros(self.ATTR_BANK, K))
            if self.attr_adversary > 0:
                # a small regressor learns the attributes from z (detached); the encoder pays while a frozen copy
                # explains more of their batch variance than 0, so z stops carrying them and the decoder has to
                # read them from the inputs an attribute slider sets (fader networks, Lample et al. 2017)
                self.attr_adv = nn.Sequential(nn.Linear(self.z_dim, 128), nn.ReLU(), nn.Linear(128, K))

    MAX_BAR = 48  # bar positions 0..47, then one null position
    ATTR_BANK = 1024  # attr_condition: the training phrases' attributes a prior sample draws from

    # ------------------------------------------------------------------ condition labels
    def label_slots(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(B, kinds) label-token ids (-1: none) -> (B, kinds) embedding slots (null where none)."""
        nulls = self.label_nulls.expand(batch, -1)
        if labels is None:
            return nulls
        return torch.where(labels >= 0, self.label_slot_of[labels.clamp(min=0)], nulls)

    def drop_labels(self, slots: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.label_dropout > 0):
            return slots
        drop = torch.rand(slots.shape, device=slots.device) < self.label_dropout
        return torch.where(drop, self.label_nulls.expand_as(slots), slots)

    def label_vector(self, slots: torch.Tensor) -> torch.Tensor:
        return self.label_embed(slots).sum(1)

    def step_labels(self, slots: torch.Tensor, since: torch.Tensor | None, length: int) -> torch.Tensor:
        """(B, L, label_dim): the position-in-bar embedding of each step (zeros without bar positions)."""
        B = len(slots)
        if not self.bar_positions:
            return torch.zeros(B, length, self.label_dim, device=slots.device)
        bar = self.label_bar[slots[:, self.label_kinds.index("metre")]]            # (B,)
        since = torch.zeros(B, dtype=torch.long, device=slots.device) if since is None else since
        t = since[:, None] + torch.arange(length, device=slots.device)[None]
        pos = torch.where(bar[:, None] > 0, t % bar.clamp(min=1)[:, None], torch.full_like(t, self.MAX_BAR))
        return self.pos_embed(pos)

    def condition_ids(self, codec, condition) -> torch.Tensor | None:
        """``"metre=3/4,mode=minor"`` -> (1, kinds) label-token ids (-1 for a kind left out); one-line errors."""
        if not condition:
            return None
        if not self.label_kinds:
            raise TunesmithError("this model does not take --condition: it was trained without condition labels "
                                 "(train with data.condition = [\"metre\", \"mode\"], e.g. "
                                 "configs/melody_vae_4bar_cond.toml)")
        from ..data.timestep import label_kind

        toks = codec.condition_symbols(condition)
        ids = [-1] * len(self.label_kinds)
        for t in toks:
            ids[self.label_kinds.index(label_kind(t))] = codec.index[t]
        return torch.tensor([ids], device=self.device)

    # ------------------------------------------------------------------ network
    def encode(self, ids: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Phrase ids (and, for a conditioned model, the label vector ``y``; null labels when not given)."""
        out, (h, _) = self.encoder(self.embed(ids))
        if self.encoder_pool == "bars":  # forward state at the end and backward state at the start of each section
            H, T = out.shape[-1] // 2, ids.shape[1] // self.sections
            feat = torch.cat([out[:, T - 1::T, :H], out[:, 0::T, H:]], 2).reshape(len(ids), -1)
        else:
            feat = torch.cat([h[-2], h[-1]], 1)
        if self.label_kinds:
            if y is None:
                y = self.label_vector(self.label_slots(None, len(ids)))
            feat = torch.cat([feat, y], 1)
        mu, logvar = self.to_latent(feat).chunk(2, 1)
        logvar = logvar.clamp(-20, 10)
        if self.attr_condition:   # the attributes are known exactly: a point mass after the Gaussian part
            a = self.attribute_inputs(ids)
            mu, logvar = torch.cat([mu, a], 1), torch.cat([logvar, torch.full_like(a, -20.0)], 1)
        return mu, logvar

    def _phrase_attributes(self, ids: torch.Tensor) -> np.ndarray:
        """(B, L) phrase ids -> (B, 5) attributes, read with the codec's symbol table the model was given."""
        pt, rest_id, hold_id = self._attr_tables
        return phrase_attributes(ids.cpu().numpy(), pt, self.steps_per_bar, rest_id, hold_id)

    def attribute_inputs(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) phrase ids -> (B, 5) attributes, normalised by :data:`ATTR_CENTRE` / :data:`ATTR_SCALE`."""
        a = (self._phrase_attributes(ids) - ATTR_CENTRE) / ATTR_SCALE
        return torch.as_tensor(a, dtype=torch.float32, device=ids.device)

    def _init_state(self, c: torch.Tensor):
        h = torch.tanh(self.dec_init(c)).reshape(len(c), 2, self.dec_layers, self.dec_hidden)
        return h[:, 0].transpose(0, 1).contiguous(), h[:, 1].transpose(0, 1).contiguous()

    def section_codes(self, z: torch.Tensor) -> torch.Tensor:
        """Hierarchical: (B, sections, latent) conductor embeddings."""
        hc = torch.tanh(self.conductor_init(z)).chunk(2, 1)
        out, _ = self.conductor(z[:, None].expand(-1, self.sections, -1).contiguous(),
                                (hc[0][None].contiguous(), hc[1][None].contiguous()))
        return self.conductor_out(out)

    def decode_logits(self, z: torch.Tensor, ids: torch.Tensor, y: torch.Tensor | None = None,
                      ysteps: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, L, V) of the phrase ``ids`` given codes ``z`` (a conditioned model: the
        label vector ``y`` (B, label_dim) and the per-step position embeddings ``ysteps`` (B, L, label_dim))."""
        B, L = ids.shape
        prev = torch.cat([torch.full((B, 1), self.start_id, device=ids.device, dtype=ids.dtype), ids[:, :-1]], 1)
        if not self.autoregressive:
            prev = torch.full_like(prev, self.blank_id)
        elif self.training and self.word_dropout > 0:
            drop = torch.rand(prev.shape, device=prev.device) < self.word_dropout
            drop[:, 0] = False
            prev = prev.masked_fill(drop, self.blank_id)
        x = self.embed(prev)
        if self.label_kinds:
            if y is None:
                slots = self.label_slots(None, B)
                y, ysteps = self.label_vector(slots), self.step_labels(slots, None, L)
            c = torch.cat([z, y], 1)
            steps = torch.cat([z[:, None].expand(-1, L, -1), y[:, None] + ysteps], 2)
            out, _ = self.dec(torch.cat([x, steps], 2), self._init_state(c))
        elif self.decoder_kind == "flat":
            out, _ = self.dec(torch.cat([x, z[:, None].expand(-1, L, -1)], 2), self._init_state(z))
        else:
            S, T = self.sections, L // self.sections
            c = self.section_codes(z).reshape(B * S, -1)
            xs = x.reshape(B * S, T, -1)
            out, _ = self.dec(torch.cat([xs, c[:, None].expand(-1, T, -1)], 2), self._init_state(c))
            out = out.reshape(B, L, -1)
        return self.head(self.drop(out))

    def kl_weight(self, step: int) -> float:
        if self.kl_warmup_steps > 0:
            return self.beta * min(1.0, step / self.kl_warmup_steps)
        return self.beta

    def forward(self, batch, mode: str = "loss", step: int = 0):
        ids = batch["tokens"]
        y = ysteps = None
        if self.label_kinds:
            slots = self.drop_labels(self.label_slots(batch.get("labels"), len(ids)))
            y, ysteps = self.label_vector(slots), self.step_labels(slots, batch.get("since"), ids.shape[1])
        mu, logvar = self.encode(ids, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        out = {}
        if self.attr_condition:   # the attribute inputs stay exact; the KL is the Gaussian part's
            z = torch.cat([z[:, :self.z_dim], mu[:, self.z_dim:]], 1)
            attrs = mu[:, self.z_dim:]
            mu, logvar = mu[:, :self.z_dim], logvar[:, :self.z_dim]
        zd = z
        if self.training and self.attr_code_dropout > 0 and self.attr_condition:
            # some items are decoded from their attributes alone, z at 0 (the prior's mean, near the codes' mean:
            # where the attribute sliders start), so the decoder follows the attribute inputs there too
            keep = torch.rand(len(z), 1, device=z.device) >= self.attr_code_dropout
            zd = torch.cat([torch.where(keep, z[:, :self.z_dim], torch.zeros_like(z[:, :self.z_dim])),
                            z[:, self.z_dim:]], 1)
        elif self.training and self.attr_code_dropout > 0:  # some items keep only their attribute dimensions
            K = len(ATTRIBUTES)
            keep = torch.rand(len(z), 1, device=z.device) >= self.attr_code_dropout
            # the other dimensions of a dropped item are set to 0 (the prior's mean, which the codes' mean is near:
            # an attribute slider's centre); its attribute dimensions are detached (these items train the decoder
            # only), so the encoder
            # orders those dimensions by the regulariser, not by what helps decoding from five numbers
            zd = torch.cat([torch.where(keep, z[:, :K], z[:, :K].detach()),
                            torch.where(keep, z[:, K:], torch.zeros_like(z[:, K:]))], 1)
        logits = self.decode_logits(zd, ids, y, ysteps)   # y, ysteps: None without condition labels
        rec = F.cross_entropy(logits.float().reshape(-1, self.vocab_size), ids.reshape(-1),
                              reduction="sum") / len(ids)
        kl_each = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        kl_pen = (kl_each - self.free_bits).clamp(min=0).mean()
        loss = rec + self.kl_weight(step) * kl_pen
        if self.attr_adversary > 0 and self.training:
            adv_fit, adv_enc = self.attr_adversary_losses(mu, attrs)
            loss = loss + adv_fit + self.attr_adversary * adv_enc
            out["attr_adv"], out["attr_adv_enc"] = adv_fit.detach(), adv_enc.detach()
        if self.attr_reg > 0:
            a = torch.as_tensor(self._phrase_attributes(ids), dtype=z.dtype, device=z.device)
            ar = attribute_reg_loss(z[:, :len(ATTRIBUTES)], a, self.attr_reg_delta).sum()
            loss = loss + self.attr_reg * ar
            out["attr"] = ar.detach()
        if self.label_adversary > 0 and batch.get("labels") is not None:
            adv_fit, adv_enc = self.adversary_losses(mu, batch["labels"])
            loss = loss + adv_fit + self.label_adversary * adv_enc
            out["adv"], out["adv_enc"] = adv_fit.detach(), adv_enc.detach()
        with torch.no_grad():
            acc = (logits.argmax(-1) == ids).float().mean()
        return {"loss": loss, "recon": rec, "kl": kl_each.mean(), "acc": acc, **out}

    def adversary_losses(self, mu: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the adversary's cross-entropy on the detached codes, summed over kinds; the encoder's penalty: by how
        much a frozen copy of the adversary beats the entropy of the batch's label frequencies, summed over kinds)."""
        fit = mu.new_zeros(())
        enc = mu.new_zeros(())
        frozen = torch.func.functional_call(self.adversary, {k: p.detach() for k, p in
                                                             self.adversary.named_parameters()}, (mu,))
        own = self.adversary(mu.detach())
        start = 0
        for j, null in enumerate(self.label_nulls.tolist()):
            lab = labels[:, j]
            keep = lab >= 0
            if keep.any():
                target = self.label_slot_of[lab[keep]] - start
                fit = fit + F.cross_entropy(own[keep, start:null], target)
                ce = F.cross_entropy(frozen[keep, start:null], target)
                freq = torch.bincount(target, minlength=null - start).float() / len(target)
                entropy = -(freq[freq > 0] * freq[freq > 0].log()).sum()
                enc = enc + (entropy - ce).clamp(min=0)
            start = null + 1
        return fit, enc

    def attr_adversary_losses(self, mu: torch.Tensor, attrs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the regressor's mean squared error on the detached z, summed over attributes; the encoder's
        penalty: the share of each attribute's batch variance a frozen copy explains from z, above 0, summed)."""
        frozen = torch.func.functional_call(self.attr_adv, {k: p.detach() for k, p in
                                                            self.attr_adv.named_parameters()}, (mu,))
        fit = (self.attr_adv(mu.detach()) - attrs).pow(2).mean(0).sum()
        var = attrs.var(0, unbiased=False).clamp(min=1e-6)
        enc = (1 - (frozen - attrs).pow(2).mean(0) / var).clamp(min=0).sum()
        return fit, enc

    # ------------------------------------------------------------------ decoding without teacher forcing
    fast_decode = True  # False: step nn.LSTM itself (the same numbers; tests compare the two)

    def _label_inputs(self, z: torch.Tensor, labels: torch.Tensor | None):
        """A conditioned model: codes + (1 or B, kinds) label ids -> the decoder's condition (B, latent +
        label_dim), the per-step additions (B, L, latent + label_dim) and the logit mask of label tokens."""
        B, L = len(z), self.phrase_len
        if labels is not None:
            labels = labels.to(z.device).expand(B, -1)
        slots = self.label_slots(labels, B)
        y = self.label_vector(slots)
        add = torch.cat([torch.zeros(B, L, self.latent_dim, device=z.device), self.step_labels(slots, None, L)], 2)
        mask = torch.zeros(self.vocab_size, device=z.device)
        mask[self.label_slot_of >= 0] = float("-inf")   # a label is never a symbol of the phrase
        return torch.cat([z, y], 1), add, mask

    @torch.no_grad()
    def decode_ids(self, z: torch.Tensor, temperature: float | None = None, generator=None,
                   labels: torch.Tensor | None = None, guidance=1.0, shared_noise: bool = False,
                   steer: float = 0.0, row_mask: torch.Tensor | None = None, key_lock: bool = False) -> torch.Tensor:
        """Codes (B, latent) -> phrases (B, L): argmax at each step (``temperature`` None) or a draw from
        the softmax at that temperature (a conditioned model: ``labels`` (1 or B, kinds) label ids, -1 free;
        ``guidance``: classifier-free guidance, one scale or one per kind (:meth:`guidance_branches`);
        ``shared_noise``: every row draws with the same noise, so equal codes decode alike; ``steer``: attribute
        steering, :meth:`steering_codes`; ``row_mask`` (B, V): added to every step's logits; ``key_lock``: decode
        twice with the same noise, the second time only in the key the first draw fits best, :meth:`key_masks`;
        once when the first draw is in that key already, as the second would be the same)."""
        if temperature is not None and temperature <= 0:
            raise TunesmithError(f"temperature must be > 0, got {temperature}")
        if key_lock:   # the second draw reuses the first's noise: the generator's state, or the device's default
            cuda = z.device.type == "cuda"
            if generator is not None:
                state = generator.get_state()
            elif temperature is not None:
                state = torch.cuda.get_rng_state(z.device) if cuda else torch.random.get_rng_state()
            first = self.decode_ids(z, temperature, generator, labels, guidance, shared_noise, steer, row_mask)
            keep = self.key_masks(first)
            if bool((keep.gather(1, first) == 0).all()):   # already in key: the masked draw would be the same
                return first
            if generator is not None:
                generator.set_state(state)
            elif temperature is not None:
                torch.cuda.set_rng_state(state, z.device) if cuda else torch.random.set_rng_state(state)
            return self.decode_ids(z, temperature, generator, labels, guidance, shared_noise, steer,
                                   keep if row_mask is None else row_mask + keep)
        B, L = len(z), self.phrase_len
        guide = self.guidance_branches(labels, guidance)
        nb = len(guide[0]) if guide else 1
        # every guided decoding as blocks of B rows that read the same symbols, and the coefficients of their
        # logits: l_0 + sum_i w_i (l_i - l_(i-1)) for the labels' guidance, (1 - w) l + w l_a for steering
        coefs = None
        if guide:
            w = list(guide[1]) + [0.0]
            coefs = [1.0 - w[0]] + [w[i] - w[i + 1] for i in range(len(w) - 1)]
        elif steer:
            if not self.attr_condition:
                raise TunesmithError("attribute steering needs a model trained with model.attr_condition = true")
            if not 0 < steer <= 1:
                raise TunesmithError(f"attribute steering is a weight from 0 to 1, not {steer}")
            w = self.steering_weights(z, float(steer))
            z, coefs, nb = self.steering_codes(z), [1.0 - w, w], 2
        out = torch.empty(B, L, dtype=torch.long, device=z.device)
        tok = torch.full((nb * B,), self.start_id, dtype=torch.long, device=z.device)
        add = mask = None
        if self.label_kinds:
            if guide:   # one block of B rows per branch; every branch reads the same symbols
                parts = [self._label_inputs(z, lab) for lab in guide[0]]
                zc, add, mask = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), parts[0][2]
            else:
                zc, add, mask = self._label_inputs(z, labels)
            conds, T = zc[:, None], L
            if self.fast_decode and self.dec_layers == 1:
                add_proj = add @ self.dec.weight_ih_l0[:, self.embed.embedding_dim:].T      # (B, L, 4H)
        elif self.decoder_kind == "flat":
            conds, T = z[:, None], L
        else:
            conds, T = self.section_codes(z), L // self.sections
        fast = self.dec_layers == 1 and self.fast_decode  # one LSTM layer as plain tensor ops: the input projection of a symbol
        if fast:                     # is a row lookup, of the code one matmul per section
            E = self.embed.embedding_dim
            w_ih, w_hh = self.dec.weight_ih_l0, self.dec.weight_hh_l0
            table = self.embed.weight @ w_ih[:, :E].T                       # (V + 2, 4H)
            whh = w_hh.T.contiguous()
        for s in range(conds.shape[1]):
            c = conds[:, s]
            state = self._init_state(c)
            if fast:
                h, cell = state[0][0], state[1][0]
                base = c @ self.dec.weight_ih_l0[:, E:].T + self.dec.bias_ih_l0 + self.dec.bias_hh_l0
            for t in range(T):
                if fast:
                    pre = table[tok] + base if add is None else table[tok] + base + add_proj[:, t]
                    i, f, g, o = pre.addmm_(h, whh).chunk(4, 1)
                    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(cell)
                    logits = self.head(h).float()
                else:
                    ct = c if add is None else c + add[:, t]
                    out_t, state = self.dec(torch.cat([self.embed(tok), ct], 1)[:, None], state)
                    logits = self.head(out_t[:, 0]).float()
                if coefs is not None:
                    lg = logits.reshape(nb, B, -1)
                    logits = sum(c * lg[i] for i, c in enumerate(coefs) if torch.is_tensor(c) or c != 0.0)
                if mask is not None:
                    logits = logits + mask
                if row_mask is not None:
                    logits = logits + row_mask
                if temperature is None:
                    tok = logits.argmax(-1)
                else:
                    g = torch.empty_like(logits[:1] if shared_noise else logits).exponential_(generator=generator).log_()
                    tok = (logits / temperature - g).argmax(-1)
                out[:, s * T + t] = tok
                if coefs is not None:
                    tok = tok.repeat(nb)
                if not self.autoregressive:
                    tok = torch.full_like(tok, self.blank_id)
        return out

    def key_masks(self, ids: torch.Tensor) -> torch.Tensor:
        """Phrases (B, L) -> (B, V) logit masks: 0 for the rest, hold and control symbols, the pitches of the
        major scale (= natural minor) that holds most of the phrase's notes (ties: the lowest tonic from C) and
        the raised leading tone of its minor (G# for C major / A minor), -inf for the other pitches. The songs
        keep 99.4 % of their phrases' notes in one such scale; prior samples kept 92 %."""
        if self._attr_tables is None:
            raise TunesmithError("model.key_lock needs the codec's vocabulary (a model built by tunesmith train)")
        pitch = self.symbol_pitch                                  # (V,) MIDI pitch of each symbol, -1 for others
        notes = pitch[ids]
        counts = F.one_hot((notes % 12).clamp(min=0), 12).mul((notes >= 0)[..., None]).sum(1)   # (B, 12) classes
        scales = torch.as_tensor(MAJOR_SCALES, dtype=torch.float32, device=ids.device)
        key = (counts.float() @ scales.T).argmax(1)                # the scale holding most notes (ties: lowest)
        allowed = torch.as_tensor(KEY_LOCK_PITCHES, device=ids.device)[key]                     # (B, 12)
        keep = (pitch < 0)[None] | allowed[:, pitch.clamp(min=0) % 12]
        return torch.where(keep, 0.0, float("-inf"))

    def steering_weights(self, z: torch.Tensor, steer: float):
        """The weight of the attributes-alone decoder for each code: ``steer``, or with ``slider_steer_from`` r > 0
        (B, 1) weights ``steer x min(1, d / r)``, d the largest distance of an attribute input from the sliders'
        centre in the attribute sliders' standard deviations."""
        if self.slider_steer_from <= 0:
            return steer
        moved = ((z[:, self.z_dim:] - self.latent_mean[self.z_dim:]) / self.attr_scale.clamp(min=1e-6)).abs().amax(1)
        return steer * (moved / self.slider_steer_from).clamp(max=1.0)[:, None]

    def steering_codes(self, z: torch.Tensor) -> torch.Tensor:
        """attr_condition: codes (B, latent) -> (2B, latent) for attribute steering: the codes, and the codes
        with z = 0, decoded from their attributes alone (as the items of ``attr_code_dropout`` trained the
        decoder; there it follows every attribute input). The logits ``(1 - w) l(z, a) + w l(0, a)`` are a
        product of the two experts: where the latent sliders took z away from 0 and the decoder reads the
        range from z, not from its input, the attributes-alone expert still asks for the range; at z = 0 the
        two agree and nothing changes."""
        alone = torch.cat([torch.zeros(len(z), self.z_dim, device=z.device, dtype=z.dtype), z[:, self.z_dim:]], 1)
        return torch.cat([z, alone])

    def guidance_branches(self, labels: torch.Tensor | None, guidance=1.0):
        """Classifier-free guidance as label sets and weights: ``([None, S_1, ..., S_n], [w_1, ..., w_n])`` for the
        logits ``l_0 + sum_i w_i (l_{S_i} - l_{S_(i-1)})``, where ``S_i`` holds the first i asked kinds (in the
        codec's order, e.g. metre then mode) and ``l_0`` is the null-label model; one scale w for all kinds is
        ``l_0 + w (l_labels - l_0)`` (two branches). ``guidance``: a number or one scale per kind (a list in
        :attr:`label_kinds` order). None when nothing is guided (no labels, or every asked kind's scale is 1)."""
        if not self.label_kinds or labels is None:
            return None
        K = len(self.label_kinds)
        ws = [float(guidance)] * K if isinstance(guidance, (int, float)) else [float(x) for x in guidance]
        asked = [j for j in range(K) if bool((labels[:, j] >= 0).any())]
        ws = [ws[j] for j in asked]
        if all(w == 1.0 for w in ws):
            return None
        if len(set(ws)) == 1:
            return [None, labels], ws[:1]
        branches, cur = [None], torch.full_like(labels, -1)
        for j in asked:
            cur = cur.clone()
            cur[:, j] = labels[:, j]
            branches.append(cur)
        return branches, ws

    def guidance_scales(self, guidance) -> list[float]:
        """``--guidance``: a number (every kind) or per kind, ``"metre=1.5,mode=5"`` or ``{"mode": 5}`` (a kind left
        out: 1) -> one scale per kind, each from 0 to 20; one-line errors."""
        K = max(len(self.label_kinds), 1)
        if isinstance(guidance, bool):
            guidance = str(guidance)
        if isinstance(guidance, (int, float)):
            per = {k: guidance for k in self.label_kinds} or {"": guidance}
        elif isinstance(guidance, (str, dict)):
            if isinstance(guidance, str):
                text = guidance.strip()
                try:
                    per = {k: float(text) for k in self.label_kinds} if "=" not in text else \
                        {k.strip(): float(v) for k, _, v in (x.partition("=") for x in text.split(",") if x.strip())}
                except ValueError:
                    raise TunesmithError(f"--guidance must be a number or per kind, e.g. metre=1.5,mode=5; "
                                         f"got {guidance!r}") from None
            else:
                per = dict(guidance)
            if not self.label_kinds:
                per = {"": 1.0 if all(v == 1.0 for v in per.values()) else 2.0}
            bad = [k for k in per if k not in self.label_kinds and k != ""]
            if bad:
                raise TunesmithError(f"--guidance: unknown kind {bad[0]!r}; this model's kinds: "
                                     f"{', '.join(self.label_kinds)}")
        else:
            raise TunesmithError(f"--guidance must be a number or per kind, e.g. metre=1.5,mode=5; got {guidance!r}")
        for v in per.values():
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= float(v) <= 20):
                raise TunesmithError(f"--guidance must be a number from 0 to 20 (1 = plain conditional), got {v!r}")
        if not self.label_kinds:
            if any(float(v) != 1.0 for v in per.values()):
                raise TunesmithError("--guidance needs a conditioned model (trained with data.condition)")
            return [1.0] * K
        return [float(per.get(k, 1.0)) for k in self.label_kinds]

    @torch.no_grad()
    def decode_beam(self, z: torch.Tensor, beam: int = 4, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (B, latent) -> phrases (B, L): beam search for the most likely phrase (sum of log
        probabilities) with ``beam`` hypotheses per code; ``beam = 1`` is argmax (:meth:`decode_ids`)."""
        beam = int(beam)
        if beam < 1:
            raise TunesmithError(f"beam must be >= 1, got {beam}")
        if beam == 1:
            return self.decode_ids(z, labels=labels)
        B, L, K = len(z), self.phrase_len, beam
        add = mask = None
        if self.label_kinds:
            zc, add, mask = self._label_inputs(z, labels)
            conds, T = zc[:, None], L
            add = add.repeat_interleave(K, 0)
        elif self.decoder_kind == "flat":
            conds, T = z[:, None], L
        else:
            conds, T = self.section_codes(z), L // self.sections
        rows = torch.arange(B, device=z.device)[:, None] * K
        score = torch.full((B, K), -1e9, device=z.device)
        score[:, 0] = 0.0                       # all hypotheses start equal: keep one until the first step
        seqs = torch.zeros(B, K, 0, dtype=torch.long, device=z.device)
        tok = torch.full((B * K,), self.start_id, dtype=torch.long, device=z.device)
        state = None
        for s in range(conds.shape[1]):
            c = conds[:, s].repeat_interleave(K, 0)
            h0 = self._init_state(c)
            if state is None or self.decoder_kind != "flat":
                state = h0                      # the bottom decoder restarts at every section
            for t in range(T):
                ct = c if add is None else c + add[:, t]
                out_t, state = self.dec(torch.cat([self.embed(tok), ct], 1)[:, None], state)
                logit = self.head(out_t[:, 0]).float()
                lp = torch.log_softmax(logit if mask is None else logit + mask, -1).reshape(B, K, -1)
                V = lp.shape[-1]
                score, idx = (score[:, :, None] + lp).reshape(B, -1).topk(K, 1)
                src, tok2 = idx // V, idx % V
                seqs = torch.cat([torch.gather(seqs, 1, src[:, :, None].expand(-1, -1, seqs.shape[2])),
                                  tok2[:, :, None]], 2)
                keep = (src + rows).reshape(-1)
                state = (state[0][:, keep], state[1][:, keep])
                tok = tok2.reshape(-1)
                if not self.autoregressive:
                    tok = torch.full_like(tok, self.blank_id)
        return seqs[:, 0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor, label=None, slider: bool = True) -> torch.Tensor:
        """The web app's VAE contract: codes -> what ``codec.decode`` reads (phrase ids): argmax, or with
        ``slider_temperature`` > 0 a draw at that temperature from noise fixed by ``slider_seed`` (the same for
        every code, so moving a slider back returns the same melody). A slider position (``slider``) is also
        steered towards its attributes (``slider_steer``, :meth:`steering_codes`) and kept in one key
        (``key_lock``, :meth:`key_masks`); the code of a real melody (``slider=False``, e.g. interpolation)
        is decoded as it is."""
        steer, lock = (self.slider_steer, self.key_lock) if slider else (0.0, False)
        if self.slider_temperature > 0:
            gen = torch.Generator(device=z.device).manual_seed(self.slider_seed)
            return self.decode_ids(z, self.slider_temperature, gen, shared_noise=True, steer=steer, key_lock=lock)
        return self.decode_ids(z, steer=steer, key_lock=lock)

    # ------------------------------------------------------------------ sliders and attribute vectors
    fit_sliders = RollAutoencoder.fit_sliders

    @torch.no_grad()
    def encode_items(self, data, max_items: int | None = None, batch_size: int = 512):
        """Latent means and the ids of (an evenly spaced subset of) a dataset's items."""
        n = len(data)
        k = min(n, max_items or n)
        idx = torch.linspace(0, n - 1, k).round().long().unique()
        codes, ids = [], []
        for i in range(0, len(idx), batch_size):
            bt = data.batch(idx[i:i + batch_size])
            b, y = bt["tokens"].to(self.device), None
            if self.label_kinds:  # the phrases' own labels
                lab = bt.get("labels")   # on the model's device before label_slots' where() (CUDA refuses a mix)
                y = self.label_vector(self.label_slots(None if lab is None else lab.to(self.device), len(b)))
            codes.append(self.encode(b, y)[0].float().cpu())
            ids.append(b.cpu())
        return torch.cat(codes).numpy(), torch.cat(ids).numpy()

    def fit_attributes(self, codes: np.ndarray, attrs: np.ndarray, quantile: float = 0.25) -> dict:
        """Attribute vectors: mean code of the top ``quantile`` of each attribute minus the bottom's; with
        ``attr_reg`` > 0, the unit vector of the attribute's own latent dimension (scale: the codes' spread
        in it). The info records the Spearman correlation of each attribute with its direction."""
        if self.attr_reg > 0 or self.attr_condition:
            return self._fit_attribute_dims(codes, attrs, quantile)
        info = {}
        centred = codes - codes.mean(0)
        dev = self.attr_dirs.device
        for j, name in enumerate(ATTRIBUTES):
            a = attrs[:, j]
            lo, hi = np.quantile(a, quantile), np.quantile(a, 1 - quantile)
            top, bot = codes[a >= hi], codes[a <= lo]
            if hi <= lo or len(top) == 0 or len(bot) == 0:
                d, scale = np.zeros(codes.shape[1]), 0.0
            else:
                v = top.mean(0) - bot.mean(0)
                d = v / (np.linalg.norm(v) + 1e-12)
                scale = float((centred @ d).std())
            self.attr_dirs[j] = torch.as_tensor(d, dtype=torch.float32, device=dev)
            self.attr_scale[j] = scale
            info[name] = {"low_quartile": round(float(lo), 4), "high_quartile": round(float(hi), 4),
                          "scale": round(scale, 5), "mean": round(float(a.mean()), 4)}
        return info

    def _fit_attribute_dims(self, codes: np.ndarray, attrs: np.ndarray, quantile: float) -> dict:
        """Attribute ``j`` lives in code dimension ``j`` (``attr_reg``) or ``z_dim + j`` (``attr_condition``,
        which also fits the sliders' reach and the attributes' prior given z)."""
        info, dev = {}, self.attr_dirs.device
        first = self.z_dim if self.attr_condition else 0
        if self.attr_condition:
            self._fit_attribute_prior(codes)
        for j, name in enumerate(ATTRIBUTES):
            a = attrs[:, j]
            d = np.zeros(codes.shape[1])
            d[first + j] = 1.0
            scale = float(codes[:, first + j].std())
            self.attr_dirs[j] = torch.as_tensor(d, dtype=torch.float32, device=dev)
            self.attr_scale[j] = scale
            info[name] = {"latent_dim": first + j, "scale": round(scale, 5), "mean": round(float(a.mean()), 4),
                          "low_quartile": round(float(np.quantile(a, quantile)), 4),
                          "high_quartile": round(float(np.quantile(a, 1 - quantile)), 4),
                          "spearman_code": round(spearman(codes[:, first + j], a), 4)}
            if self.attr_condition:
                info[name]["reach"] = [round(float(self.attr_lo[j]), 4), round(float(self.attr_hi[j]), 4)]
        return info

    def _fit_attribute_prior(self, codes: np.ndarray, reach: float = 0.005) -> None:
        """attr_condition: the attributes' 0.5 % / 99.5 % quantiles (an attribute slider stops there) and the
        bank of training attributes prior samples draw from (evenly spaced over the encoded phrases)."""
        a = np.asarray(codes[:, self.z_dim:], np.float64)
        dev = self.attr_dirs.device
        rows = np.linspace(0, len(a) - 1, self.ATTR_BANK).round().astype(int)
        self.attr_bank.copy_(torch.as_tensor(a[rows], dtype=torch.float32, device=dev))
        self.attr_lo.copy_(torch.as_tensor(np.quantile(a, reach, axis=0), dtype=torch.float32, device=dev))
        self.attr_hi.copy_(torch.as_tensor(np.quantile(a, 1 - reach, axis=0), dtype=torch.float32, device=dev))

    def prior_codes(self, n: int, generator=None) -> torch.Tensor:
        """n codes from the prior: z ~ N(0, I); with attr_condition, each code's attributes are those of a
        training phrase drawn from the bank (independent of z: a linear Gaussian p(a | z) fitted on the codes
        gave prior samples a mean overlap of 0.823 with the held-out phrases, the bank 0.871)."""
        z = torch.randn(n, self.z_dim, generator=generator, device=self.device)
        if not self.attr_condition:
            return z
        pick = torch.randint(0, self.ATTR_BANK, (n,), generator=generator, device=self.device)
        return torch.cat([z, self.attr_bank[pick]], 1)

    def within_reach(self, z: torch.Tensor) -> torch.Tensor:
        """Codes with their attribute inputs (attr_condition) stopped at the training phrases' reach."""
        if not self.attr_condition:
            return z
        a = torch.maximum(torch.minimum(z[:, self.z_dim:], self.attr_hi), self.attr_lo)
        return torch.cat([z[:, :self.z_dim], a], 1)

    def move_attribute(self, base: torch.Tensor, j: int, values) -> torch.Tensor:
        """Codes (1 or N, latent) -> (len(values), latent): ``base`` moved along attribute ``j``'s slider by
        each value (std units); with attr_condition the attribute stops at the edge of the training phrases'."""
        v = torch.as_tensor(values, dtype=torch.float32, device=base.device).reshape(-1, 1)
        return self.within_reach(base + v * self.attr_scale[j] * self.attr_dirs[j])

    @torch.no_grad()
    def fit_label_prior(self, data, batch_size: int = 512) -> dict:
        """Each label's aggregate posterior: the mean and standard deviation of the codes of the stored
        (untransposed) training phrases with that label, encoded with their own labels."""
        ph, labels = data.phrases, data.labels
        codes = []
        for i in range(0, len(ph), batch_size):
            y = self.label_vector(self.label_slots(labels[i:i + batch_size].to(self.device), len(ph[i:i + batch_size])))
            codes.append(self.encode(ph[i:i + batch_size].to(self.device), y)[0].float())
        codes, slots = torch.cat(codes), self.label_slots(labels.to(self.device), len(ph))
        self.label_code_all.copy_(codes.mean(0))
        counts = {}
        for j in range(slots.shape[1]):
            for sl in slots[:, j].unique().tolist():
                sel = codes[slots[:, j] == sl]
                self.label_code_mean[sl] = sel.mean(0)
                self.label_code_std[sl] = sel.std(0) if len(sel) > 1 else torch.ones(self.latent_dim)
                counts[int(sl)] = len(sel)
        return {"phrases_per_slot": counts}

    def label_prior(self, labels: torch.Tensor, n: int, generator=None) -> torch.Tensor | None:
        """(1, kinds) label ids -> n codes from the asked labels' aggregate posteriors (the kinds' means
        combined as offsets from the overall mean, their spreads averaged); None before it is fitted."""
        slots = self.label_slots(labels, 1)[0]
        asked = [int(s) for s, lab in zip(slots, labels[0]) if lab >= 0]
        if not asked or not bool((self.label_code_std[asked] > 0).all()):
            return None
        means, stds = self.label_code_mean[asked], self.label_code_std[asked]
        overall = self.label_code_all
        mu = overall + (means - overall).sum(0)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        return mu + stds.mean(0) * eps

    def on_checkpoint(self, ctx) -> None:
        train_data, run_dir = ctx.data, ctx.run_dir
        codes, ids = self.encode_items(train_data, self.slider_items)
        if self.attr_condition:   # the latent sliders are z's dimensions, never the attribute inputs
            latent_only = codes.copy()
            latent_only[:, self.z_dim:] = codes[:, self.z_dim:].mean(0)
            info = self.fit_sliders(latent_only)
            if self.attr_code_dropout > 0:   # the sliders start where the decoder learnt to follow the attributes
                self.latent_mean[:self.z_dim] = 0.0   # alone: z = 0, the prior's mean
                info["centre"] = "z = 0 (attr_code_dropout)"
        else:
            info = self.fit_sliders(codes)
        if self.label_kinds and getattr(train_data, "labels", None) is not None:
            info["label_prior"] = self.fit_label_prior(train_data)
        if hasattr(train_data, "pitch_table"):  # PhraseData carries the symbol table the attributes need
            info["attributes"] = self.fit_attributes(codes, phrase_attributes(
                ids, train_data.pitch_table, self.steps_per_bar, train_data.rest_id, train_data.hold_id))
        run_dir = Path(run_dir)
        tmp = run_dir / ".sliders.json.tmp"
        tmp.write_text(json.dumps(info, indent=1))
        tmp.replace(run_dir / "sliders.json")

    def attributes(self, codec, ids) -> np.ndarray:
        """Attributes (N, 5) of phrases given as ids."""
        return phrase_attributes(np.asarray(ids), codec.pitch_table(), codec.steps_per_bar,
                                 codec.index["r"], codec.index["_"])

    def slider_z(self, values=None, n_rows: int = 1, attributes=None) -> torch.Tensor:
        """Latent slider values (std units) and attribute slider values (``{name: std units}`` or a list
        in :data:`ATTRIBUTES` order) -> codes (n_rows, latent)."""
        z = RollAutoencoder.slider_z(self, values if values is not None and len(values) else [0.0], 1)
        if attributes is not None:
            a = self._attr_values(attributes)
            z = self.within_reach(z + (a * self.attr_scale) @ self.attr_dirs)
        return z.expand(n_rows, -1) if len(z) == 1 else z

    def _attr_values(self, attributes) -> torch.Tensor:
        if isinstance(attributes, dict):
            bad = [k for k in attributes if k not in ATTRIBUTES]
            if bad:
                raise TunesmithError(f"unknown attribute {bad[0]!r}; known: {', '.join(ATTRIBUTES)}")
            vals = [float(attributes.get(k, 0.0)) for k in ATTRIBUTES]
        else:
            vals = [float(x) for x in attributes]
            if len(vals) > len(ATTRIBUTES):
                raise TunesmithError(f"{len(vals)} attribute values; there are {len(ATTRIBUTES)}: {', '.join(ATTRIBUTES)}")
            vals += [0.0] * (len(ATTRIBUTES) - len(vals))
        v = torch.tensor(vals, dtype=torch.float32, device=self.attr_dirs.device)
        if not torch.isfinite(v).all() or v.abs().max() > 10 * SLIDER_RANGE:
            raise TunesmithError(f"attribute values must be finite and within +-{10 * SLIDER_RANGE:g}")
        return v

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def encode_score(self, codec, piece, label=None, transpose: bool = True) -> torch.Tensor:
        """The code of a piece's first phrase (a MIDI path or a Score), moved to C major / A minor as the
        training songs were (``label`` is the web app's VAE contract; this model has none)."""
        from ..data.midi import read_midi

        score = read_midi(piece) if not hasattr(piece, "pitch") else piece
        ph = codec.phrases(score, transpose=transpose, min_fill=0.0)
        if not ph:
            raise TunesmithError("the piece has no notes to encode")
        mu, _ = self.encode(torch.tensor(ph[:1], device=self.device))
        return mu[0]

    @torch.no_grad()
    def generate(self, codec, n: int, generator=None, temperature: float | None = None,
                 sliders: list[float] | None = None, attributes: dict[str, float] | None = None, interpolate=None,
                 tempo: float = 120.0, beam: int = 1, condition: str | None = None, guidance: str | float | dict = 1.0):
        """``sliders`` (latent, std units) and/or ``attributes`` ({name: std units}) -> n identical phrases, decoded
        as the web page decodes a slider position (:meth:`decode`; ``temperature`` and ``beam`` are for the rest);
        ``interpolate=(a, b)``: two MIDI paths or Scores -> n phrases between their codes (endpoints
        included); otherwise n phrases from the prior. Decoding is argmax unless ``temperature`` is given;
        ``beam`` > 1 (without a temperature): beam search for the most likely phrase of each code (also what
        ``tunesmith sample --reconstruct`` uses). ``condition`` (``"metre=3/4,mode=minor"``): a model trained with
        ``data.condition`` decodes with those labels (a kind left out is null, i.e. free); ``guidance`` (w, 1 = plain
        conditional; or per kind, ``"metre=1.5,mode=5"``) pushes each step's logits away from the label-free
        model's (classifier-free guidance, :meth:`guidance_branches`)."""
        scales = self.guidance_scales(guidance)
        labels = self.condition_ids(codec, condition)
        if interpolate is not None:
            if sliders is not None or attributes is not None:
                raise TunesmithError("give either sliders/attributes or --interpolate, not both")
            a, b = (self.encode_score(codec, x) for x in interpolate)
            t = torch.linspace(0, 1, n, device=self.device)[:, None] if n > 1 else torch.zeros(1, 1, device=self.device)
            z = (1 - t) * a + t * b
        elif sliders is not None or attributes is not None:
            z = self.slider_z(list(sliders) if sliders is not None else None, n, attributes)
        else:
            z = self.label_prior(labels, n, generator) if labels is not None else None
            if z is None:
                z = self.prior_codes(n, generator)
        guided = self.guidance_branches(labels, scales) is not None
        if guided and temperature is None and int(beam) > 1:
            raise TunesmithError("--guidance works with sampling or argmax decoding, not beam search: "
                                 "give --temperature or --set beam=1")
        if labels is None and (sliders is not None or attributes is not None):
            ids = self.decode(z)   # a slider position is one melody, decoded as the web page decodes it
        elif temperature is None and int(beam) > 1:
            ids = self.decode_beam(z, beam, labels)
        else:   # prior samples are new melodies: kept in one key with key_lock; real melodies' codes are not
            ids = self.decode_ids(z, temperature, generator, labels, scales,
                                  key_lock=self.key_lock and interpolate is None)
        return [codec.decode(r, tempo=tempo or 120.0) for r in ids]
