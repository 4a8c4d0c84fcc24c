"""A decoder-only Transformer with relative position attention over time-step symbols (Music Transformer).

Same data as the Essen LSTM (``data.encoding = "timestep"``: one symbol per 16th note, the same song split
and the same masking of delimiter runs), so the two validation losses and ``tunesmith score`` compare them
directly. The model has no absolute positions: every layer adds a learned relative-position term
``q_i . r_(i-j)`` to the attention logits (Shaw et al. 2018), computed with Huang et al.'s (2018) "skewing"
trick -- one ``(T, T)`` matrix ``Q R^T`` per head, shifted into place by a pad and a reshape, instead of a
``(T, T, d)`` tensor of gathered embeddings.

Sampling keeps a key/value cache per layer, so each new symbol costs one query against the cached keys
instead of re-running the whole context (``benchmarks/bench_transformer.py`` measures both). Because the
positions are relative, the cache slides: past ``max_len`` symbols the oldest keys are dropped.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TunesmithError
from .base import TunesmithModel, register_model
from .melody_lstm import LabelConditioning, MelodyLSTM, guided, next_token_loss


def skew(qe: torch.Tensor) -> torch.Tensor:
    """Huang et al.'s skewing. ``qe[..., i, m]`` is query ``i`` against the relative embedding of distance
    ``T - 1 - m`` (column ``T - 1`` is distance 0). Returns ``s`` with ``s[..., i, j] = qe[..., i, T - 1 - i + j]``
    for ``j <= i`` (what query ``i`` adds to its logit for key ``j``); entries above the diagonal are junk and
    must be masked by the caller."""
    *lead, T, M = qe.shape
    padded = F.pad(qe, (1, 0))                        # (..., T, M + 1)
    return padded.reshape(*lead, M + 1, T)[..., 1:, :]  # (..., T, T) for M == T


class MetrePositions(LabelConditioning):
    """:class:`LabelConditioning` whose bar positions are **per metre**: the position slot is (metre label,
    steps since the song's first symbol modulo that metre's bar), one embedding row per pair, where the shared
    version has one row per position whatever the metre. 3/4 and 6/8 both have 12-step bars and got the same
    twelve rows there, so the metre label alone had to tell the network whether a bar groups as 3 x 4 or 2 x 6
    steps -- and the fine-tuned Transformer wrote 6/8 requests mostly as 3/4 (docs/conditioning.md). Here each
    metre has its own rows (``model.metre_positions = true``). Everything else -- label slots, dropout, guidance,
    the phase relative to the song's start -- is the parent's."""

    def __init__(self, vocab_size: int, delimiter_id: int, label_groups: dict, dim: int, dropout: float,
                 bar_steps: dict):
        super().__init__(vocab_size, delimiter_id, label_groups, dim, dropout, bar_steps)
        if not self.positions:
            raise TunesmithError("model.metre_positions needs model.bar_positions = true and metre labels "
                                 "(data.condition with \"metre\")")
        self.metre_col = self.kinds.index("metre")
        self.n_metres = len(label_groups["metre"])
        self.metre0 = int(self.nulls[self.metre_col]) - self.n_metres   # slot of the first metre label
        self.embed = nn.Embedding(self.pos0 + self.n_metres * self.MAX_BAR + 1, dim)
        nn.init.zeros_(self.embed.weight)

    def _per_metre(self, out: torch.Tensor) -> torch.Tensor:
        """Shared position slots (last column: ``pos0 + p``, ``pos0 + MAX_BAR`` = null) -> per-metre ones."""
        pos = out[..., -1] - self.pos0
        metre = out[..., self.metre_col] - self.metre0          # 0..n_metres-1 (n_metres: null, no bar then)
        null = self.pos0 + self.n_metres * self.MAX_BAR
        per = torch.where(pos >= self.MAX_BAR, torch.full_like(pos, null),
                          self.pos0 + metre.clamp(max=self.n_metres - 1) * self.MAX_BAR + pos)
        return torch.cat([out[..., :-1], per[..., None]], -1)

    def slots(self, ids, labels=None, since=None):
        return self._per_metre(super().slots(ids, labels, since))

    def step_slots(self, last, since_last, t):
        return self._per_metre(super().step_slots(last, since_last, t))


class RelativeSelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, max_len: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise TunesmithError(f"model.d_model ({d_model}) must be a multiple of model.heads ({heads})")
        self.h, self.dh, self.max_len, self.p = heads, d_model // heads, max_len, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        # row m holds the embedding of distance max_len - 1 - m (last row: distance 0), one table per head
        self.rel = nn.Parameter(torch.randn(heads, max_len, self.dh) * self.dh ** -0.5)

    def _split(self, x):
        B, T, _ = x.shape
        return self.qkv(x).view(B, T, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, dh)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Causal self-attention over the whole input (training, scoring, the prefill of sampling).
        Returns the output and this layer's (keys, values) for a cache."""
        B, T, D = x.shape
        if T > self.max_len:
            raise TunesmithError(f"input of {T} steps is longer than the model's context ({self.max_len})")
        q, k, v = self._split(x)
        qe = torch.einsum("bhtd,hmd->bhtm", q, self.rel[:, self.max_len - T:])
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        bias = (skew(qe) / math.sqrt(self.dh)).masked_fill(~causal, float("-inf"))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.p if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, D)), (k, v)

    def step(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor]):
        """One new position per row (``x``: (B, 1, D)) against the cached keys/values; the cache slides to
        the last ``max_len`` positions."""
        B, _, D = x.shape
        q, k, v = self._split(x)
        k = torch.cat([cache[0], k], 2)[:, :, -self.max_len:]
        v = torch.cat([cache[1], v], 2)[:, :, -self.max_len:]
        Tk = k.shape[2]
        bias = torch.einsum("bhqd,hkd->bhqk", q, self.rel[:, self.max_len - Tk:]) / math.sqrt(self.dh)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out(y.transpose(1, 2).reshape(B, 1, D)), (k, v)


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, d_model: int, heads: int, ff: int, max_len: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = RelativeSelfAttention(d_model, heads, max_len, dropout)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Linear(ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        a, kv = self.attn(self.ln1(x))
        x = x + self.drop(a)
        return x + self.drop(self.ff(self.ln2(x))), kv

    def step(self, x, cache):
        a, kv = self.attn.step(self.ln1(x), cache)
        x = x + a
        return x + self.ff(self.ln2(x)), kv


@register_model("melody_transformer")
class MelodyTransformer(TunesmithModel):
    objective = "likelihood"
    page_kind = "lstm"
    loss_unit = "nats/step"

    def __init__(self, vocab_size: int, delimiter_id: int = 0, d_model: int = 256, layers: int = 4, heads: int = 8,
                 ff: int = 1024, max_len: int = 256, dropout: float = 0.1, tie_embeddings: bool = True,
                 prime_delimiters: int = 16, mask_delimiter_runs: bool = True, target: str = "all",
                 label_groups: dict | None = None, label_dropout: float = 0.1, bar_positions: bool = False,
                 bar_steps: dict | None = None, metre_positions: bool = False):
        super().__init__()
        if target != "all":
            raise TunesmithError("melody_transformer trains every position: set data.target = \"all\"")
        if not 1 <= prime_delimiters < max_len:
            raise TunesmithError(f"model.prime_delimiters must be in 1..{max_len - 1}, got {prime_delimiters}")
        self.vocab_size, self.delimiter_id, self.max_len = vocab_size, delimiter_id, max_len
        self.prime_delimiters, self.mask_delimiter_runs = prime_delimiters, mask_delimiter_runs
        self.embed = nn.Embedding(vocab_size, d_model)
        # a conditioned model (data.condition): its labels' vector is added to the input at every step
        # (with metre_positions the bar positions are per metre: MetrePositions; data without metre labels
        # -- a folder whose songs share one metre -- has no bar positions, so it gets the plain conditioning)
        if metre_positions and not bar_positions:
            raise TunesmithError("model.metre_positions needs model.bar_positions = true")
        self.cond = None
        if label_groups:
            per_metre = metre_positions and "metre" in label_groups and bool(bar_steps)
            kind = MetrePositions if per_metre else LabelConditioning
            self.cond = kind(vocab_size, delimiter_id, label_groups, d_model, label_dropout,
                             bar_steps if bar_positions else None)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, heads, ff, max_len, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        if tie_embeddings:
            self.head.weight = self.embed.weight
        self.apply(self._init)
        if self.cond is not None:
            nn.init.zeros_(self.cond.embed.weight)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    # ----------------------------------------------------------------- likelihood
    def logits(self, ids: torch.Tensor, return_cache: bool = False, slots: torch.Tensor | None = None):
        """Next-symbol logits for every position of ``ids`` (B, T <= max_len); a conditioned model takes the
        labels' ``slots`` (B, T, kinds), found in ``ids`` when not given."""
        x = self.embed(ids)
        if self.cond is not None:
            x = x + self.cond(self.cond.slots(ids) if slots is None else slots)
        x = self.drop(x)
        cache = []
        for b in self.blocks:
            x, kv = b(x)
            cache.append(kv)
        out = self.head(self.ln(x))
        return (out, cache) if return_cache else out

    def forward(self, batch, mode: str = "loss", step: int = 0):
        tokens, slots = batch["tokens"], None
        if self.cond is not None:
            tokens, labels = self.cond.drop(tokens, batch.get("labels"))
            slots = self.cond.slots(tokens, labels, batch.get("since"))[:, :-1]
        x, y = tokens[:, :-1], tokens[:, 1:]
        return next_token_loss(self.logits(x, slots=slots), x, y, self.delimiter_id, self.mask_delimiter_runs)

    @torch.no_grad()
    def log_probs(self, ids: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the next symbol at every position of one long sequence ``ids`` (T,): row t
        predicts ``ids[t + 1]``, seeing at most ``max_len`` symbols (windows overlap by half; each position
        is scored in the window that gives it the longest context)."""
        self.eval()
        T, L = len(ids), self.max_len
        out = torch.empty(T, self.vocab_size, device=ids.device)
        # a conditioned model: the labels of every position from the whole sequence (a later window no longer
        # holds the song's label tokens)
        slots = self.cond.slots(ids[None]) if self.cond is not None else None
        sl = (lambda a, b: slots[:, a:b]) if slots is not None else (lambda a, b: None)
        if T <= L:
            return torch.log_softmax(self.logits(ids[None], slots=slots)[0].float(), -1)
        half = L // 2
        out[:L] = torch.log_softmax(self.logits(ids[None, :L], slots=sl(0, L))[0].float(), -1)
        done = L
        while done < T:  # next block of up to half a window, scored with at least half a window of context
            end = min(done + half, T)
            lp = torch.log_softmax(self.logits(ids[None, end - L:end], slots=sl(end - L, end))[0].float(), -1)
            out[done:end] = lp[L - (end - done):]
            done = end
        return out

    # ----------------------------------------------------------------- sampling
    def _primed(self, n: int, primer_ids: list[int], labels: list[int] | None = None) -> torch.Tensor:
        lab = self.cond.prefix(labels or []) if self.cond is not None else []
        start = [self.delimiter_id] * self.prime_delimiters + lab + primer_ids
        return torch.tensor([start] * n, device=self.device)

    _guided_start = MelodyLSTM._guided_start

    @torch.no_grad()
    def sample_ids(self, codec, n: int, primer: str | None = None, temperature: float = 1.0,
                   top_k: int | None = None, steps: int = 256, generator=None, labels: list[int] | None = None,
                   guidance: float = 1.0) -> list[list[int]]:
        """N continuations in one batch with a key/value cache: one query per layer and symbol. ``labels``
        and ``guidance``: as the LSTM's (a conditioned model; rows n..2n are the unconditioned branch)."""
        was_training = self.training
        self.eval()
        primer_ids = codec.parse_primer(primer) if primer else []
        start = self._guided_start(self._primed(n, primer_ids, labels), guidance)
        slots = self.cond.slots(start)[:, -self.max_len:] if self.cond is not None else None
        logits, cache = self.logits(start[:, -self.max_len:], return_cache=True, slots=slots)
        mask = self.cond.label_ids if self.cond is not None else None
        if self.cond is not None:
            last_slots, since_last = slots[:, -1], self.cond.since(start)[:, -1]
        last = guided(logits[:, -1], n, guidance, mask) if mask is not None else logits[:, -1]
        last = MelodyLSTM.not_the_end(self, last)
        out = torch.empty(n, steps, dtype=torch.long, device=self.device)
        for t in range(steps):
            nxt = MelodyLSTM.pick(last, temperature, top_k, generator)
            out[:, t] = nxt
            if t + 1 == steps:
                break
            if start.shape[0] > n:
                nxt = torch.cat([nxt, nxt])
            x = self.embed(nxt)[:, None]
            if self.cond is not None:   # the labels' (and bar position's) vector of this symbol
                x = x + self.cond(self.cond.step_slots(last_slots, since_last, t))[:, None]
            for i, b in enumerate(self.blocks):
                x, cache[i] = b.step(x, cache[i])
            last = self.head(self.ln(x))[:, 0]
            if mask is not None:
                last = guided(last, n, guidance, mask)
        self.train(was_training)
        return MelodyLSTM._melodies(self, primer_ids, out)

    @torch.no_grad()
    def sample_ids_window(self, codec, n: int, primer: str | None = None, temperature: float = 1.0,
                          top_k: int | None = None, steps: int = 256, generator=None,
                          labels: list[int] | None = None) -> list[list[int]]:
        """For comparison: re-run the whole context (up to ``max_len`` symbols) for every new symbol; a
        conditioned model gets its labels' (and bar positions') slots as in training."""
        was_training = self.training
        self.eval()
        primer_ids = codec.parse_primer(primer) if primer else []
        seq = self._primed(n, primer_ids, labels)
        mask = self.cond.label_ids if self.cond is not None else None
        gen = []
        for t in range(steps):
            slots = self.cond.slots(seq)[:, -self.max_len:] if self.cond is not None else None
            last = self.logits(seq[:, -self.max_len:], slots=slots)[:, -1]
            if mask is not None:
                last = guided(last, n, 1.0, mask)
            if t == 0:
                last = MelodyLSTM.not_the_end(self, last)
            nxt = MelodyLSTM.pick(last, temperature, top_k, generator)
            gen.append(nxt)
            seq = torch.cat([seq, nxt[:, None]], 1)
        self.train(was_training)
        return MelodyLSTM._melodies(self, primer_ids, torch.stack(gen, 1))

    # the LSTM's sampling front end (conditioning labels before the primer, decoding) over this model's
    # sample_ids: the same controls, the same code
    generate = MelodyLSTM.generate
