"""Seed 000's LSTM melody language model over time-step symbols.

The seed's Keras model: one-hot input -> LSTM(256) -> Dropout(0.2) -> Dense(vocab, softmax), trained with
sparse categorical cross-entropy on the last token of each 64-step window. Here the same network is
trained on every position of each window (teacher forcing) unless ``data.target = "last"``, and sampling
steps the LSTM state one token at a time instead of re-running the window per generated token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TunesmithError
from .base import TunesmithModel, register_model


def next_token_loss(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor, delimiter_id: int,
                    mask_delimiter_runs: bool) -> dict[str, torch.Tensor]:
    """Cross-entropy and accuracy of every next-step prediction (the LSTM's and the Transformer's).
    Inside a run of delimiters the next delimiter is certain: with ``mask_delimiter_runs`` it is not counted."""
    y = y.clone()
    if mask_delimiter_runs:
        y[(x == delimiter_id) & (y == delimiter_id)] = -100
    valid = y != -100
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
    acc = ((logits.argmax(-1) == y) & valid).sum() / valid.sum().clamp(min=1)
    return {"loss": loss, "acc": acc}


GRAPH_CHUNK = 32  # tokens per CUDA-graph replay when sampling on a GPU


class LabelConditioning(nn.Module):
    """Condition labels (``<metre=3/4>``, ``<mode=minor>``; docs/conditioning.md) as a vector added at *every*
    step, not only as a token before the song. ``label_groups`` (from the codec) lists each kind's label-token
    ids; each kind has one more slot, its **null** label (a song without that label). ``slots`` finds, for every
    position, the current label of each kind -- the last label token since the last delimiter -- or takes them
    from the batch (``labels``: windows that start inside a song); the vector is the sum of the kinds'
    embeddings (zero-initialised: a fine-tuned unconditioned model starts where it was).

    Training drops each kind's label with probability ``dropout`` per window (its label tokens become
    delimiters, its slot null), so the same network is also the unconditioned model that classifier-free
    guidance needs: ``l_u + w (l_c - l_u)`` at sampling (``guidance`` w; 1 = plain conditional).

    With ``bar_steps`` (``{metre label id: bar length in steps}``) the vector also holds the **position in the
    bar**: the steps since the song's first symbol modulo the bar length of its metre label (one more slot
    column; null when the metre is null), so the bar period the metre asks for is given at every step instead of
    being counted by the network. The phase is relative to the song's start (a pickup is learnt from the data)."""

    MAX_BAR = 48   # positions 0..47 (a bar of up to 48 steps: 3/1 in 16ths), then one null position

    def __init__(self, vocab_size: int, delimiter_id: int, label_groups: dict, dim: int, dropout: float = 0.0,
                 bar_steps: dict | None = None):
        super().__init__()
        groups = [list(map(int, ids)) for ids in label_groups.values()]
        self.kinds, self.delimiter_id, self.p = list(label_groups), delimiter_id, float(dropout)
        slot_of, kind_of, nulls, n = torch.full((vocab_size,), -1), torch.full((vocab_size,), -1), [], 0
        for k, ids in enumerate(groups):
            slot_of[ids] = torch.arange(n, n + len(ids))
            kind_of[ids] = k
            nulls.append(n + len(ids))
            n += len(ids) + 1
        self.register_buffer("slot_of", slot_of, persistent=False)
        self.register_buffer("kind_of", kind_of, persistent=False)
        self.register_buffer("nulls", torch.tensor(nulls), persistent=False)
        bar = torch.zeros(n + 1, dtype=torch.long)     # bar length of each label slot (0: not a metre)
        for tok, steps in (bar_steps or {}).items():
            if int(self.slot_of[int(tok)]) >= 0 and 0 < int(steps) <= self.MAX_BAR:
                bar[self.slot_of[int(tok)]] = int(steps)
        self.positions = bool(bar_steps) and "metre" in self.kinds
        self.register_buffer("bar_of", bar, persistent=False)
        self.pos0 = n                                  # position p has slot pos0 + p; null is pos0 + MAX_BAR
        self.embed = nn.Embedding(n + (self.MAX_BAR + 1 if self.positions else 0), dim)
        nn.init.zeros_(self.embed.weight)

    @property
    def label_ids(self) -> torch.Tensor:
        return (self.kind_of >= 0).nonzero()[:, 0]

    def slots(self, ids: torch.Tensor, labels: torch.Tensor | None = None, since: torch.Tensor | None = None
              ) -> torch.Tensor:
        """(B, T) ids -> (B, T, kinds [+ 1]) slots: ``labels`` (B, T, kinds) label-token ids or -1 when given,
        else the last label token of each kind since the last delimiter in ``ids`` (null before any); with bar
        positions one more column, from ``since`` (steps since the song's first symbol, -1 outside a song;
        found in ``ids`` when not given)."""
        if labels is None:
            labels = self._current(ids)
        out = torch.where(labels >= 0, self.slot_of[labels.clamp(min=0)], self.nulls.expand_as(labels))
        if not self.positions:
            return out
        since = self.since(ids) if since is None else since
        bar = self.bar_of[out[..., self.kinds.index("metre")]]
        return torch.cat([out, self.position_slot(since, bar)[..., None]], -1)

    def position_slot(self, since: torch.Tensor, bar: torch.Tensor) -> torch.Tensor:
        pos = torch.where((since >= 0) & (bar > 0), since % bar.clamp(min=1), torch.full_like(since, self.MAX_BAR))
        return self.pos0 + pos

    def since(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) -> steps since the song's first symbol (the first after the delimiters and labels); -1 on a
        delimiter or label, and where no song start lies in ``ids``."""
        pos = torch.arange(ids.shape[-1], device=ids.device).expand_as(ids)
        event = (self.kind_of[ids] >= 0) | (ids == self.delimiter_id)
        last = torch.where(event, pos, torch.full_like(pos, -1)).cummax(-1).values
        return torch.where(event | (last < 0), torch.full_like(pos, -1), pos - last - 1)

    def step_slots(self, last: torch.Tensor, since_last: torch.Tensor, t: int) -> torch.Tensor:
        """Sampling: the slots of the t-th generated symbol (t = 0, 1, ...) after a context whose last position
        had slots ``last`` (B, columns) and ``since_last`` (B,)."""
        if not self.positions:
            return last
        bar = self.bar_of[last[:, self.kinds.index("metre")]]
        since = torch.where(since_last >= 0, since_last + 1 + t, torch.full_like(since_last, t))
        return torch.cat([last[:, :-1], self.position_slot(since, bar)[:, None]], 1)

    def _current(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, T, kinds): the last label token of each kind since the last delimiter, or -1."""
        pos = torch.arange(ids.shape[-1], device=ids.device).expand_as(ids)
        cols = []
        for k in range(len(self.kinds)):
            event = (self.kind_of[ids] == k) | (ids == self.delimiter_id)
            last = torch.where(event, pos, torch.full_like(pos, -1)).cummax(-1).values
            tok = ids.gather(-1, last.clamp(min=0))
            cols.append(torch.where((last >= 0) & (self.kind_of[tok] == k), tok, torch.full_like(tok, -1)))
        return torch.stack(cols, -1)

    def forward(self, slots: torch.Tensor) -> torch.Tensor:
        return self.embed(slots).sum(-2)

    def drop(self, tokens: torch.Tensor, labels: torch.Tensor | None):  # noqa: D401
        """Label dropout for one training batch: per window and kind, with probability ``p``, that kind's label
        tokens become delimiters and its slots null. Returns (tokens, labels) with labels always given."""
        if labels is None:  # windows without a "labels" entry: the label tokens they contain
            labels = self._current(tokens)
        if not self.training or self.p <= 0:
            return tokens, labels
        off = torch.rand(tokens.shape[0], len(self.kinds), device=tokens.device) < self.p   # (B, kinds)
        tokens = self.blank(tokens, off)
        labels = torch.where(off[:, None, :], torch.full_like(labels, -1), labels)
        return tokens, labels

    def blank(self, ids: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
        """Remove the labels of the kinds ``off`` (B, kinds) from ``ids`` without moving anything: a removed
        label token becomes a copy of the symbol before it (a delimiter, or the previous kind's label), kind by
        kind in order, so a song with a missing label looks the same in training and at sampling."""
        for k in range(len(self.kinds)):
            hit = (self.kind_of[ids] == k) & off[:, k:k + 1]
            if hit.any():
                prev = torch.cat([torch.full_like(ids[:, :1], self.delimiter_id), ids[:, :-1]], 1)
                ids = torch.where(hit, prev, ids)
        return ids

    def prefix(self, given: list[int]) -> list[int]:
        """The label tokens to put before a song for the labels ``given`` (ids; missing kinds are null)."""
        out: list[int] = []
        for k in range(len(self.kinds)):
            tok = [t for t in given if int(self.kind_of[t]) == k]
            out.append(tok[0] if tok else (out[-1] if out else self.delimiter_id))
        return out

    def unconditioned(self, ids: torch.Tensor) -> torch.Tensor:
        """The same context with every label removed (:meth:`blank`): the guidance's null branch."""
        return self.blank(ids, torch.ones(ids.shape[0], len(self.kinds), dtype=torch.bool, device=ids.device))


def guided(logits: torch.Tensor, n: int, guidance: float, label_ids: torch.Tensor | None) -> torch.Tensor:
    """Rows [:n] conditioned, [n:] unconditioned (or only n rows) -> n rows of ``l_u + w (l_c - l_u)``; label
    tokens are never sampled."""
    logits = logits.float()
    if logits.shape[0] > n:
        lc, lu = logits[:n], logits[n:]
        logits = lu + guidance * (lc - lu)
    if label_ids is not None:
        logits = logits.index_fill(-1, label_ids, float("-inf"))
    return logits


@register_model("melody_lstm")
class MelodyLSTM(TunesmithModel):
    objective = "likelihood"
    page_kind = "lstm"
    loss_unit = "nats/step"

    def __init__(self, vocab_size: int, delimiter_id: int = 0, hidden: int = 256, layers: int = 1,
                 dropout: float = 0.2, embed_dim: int = 0, target: str = "all", mask_delimiter_runs: bool = True,
                 label_groups: dict | None = None, label_dim: int = 32, label_dropout: float = 0.1,
                 bar_positions: bool = False, bar_steps: dict | None = None):
        super().__init__()
        self.vocab_size, self.delimiter_id, self.target = vocab_size, delimiter_id, target
        self.mask_delimiter_runs = mask_delimiter_runs
        self.embed = nn.Embedding(vocab_size, embed_dim) if embed_dim else None  # 0 = one-hot, as the seed
        # a conditioned model (data.condition) gets its labels' vector as extra inputs at every step
        self.cond = (LabelConditioning(vocab_size, delimiter_id, label_groups, label_dim, label_dropout,
                                       bar_steps if bar_positions else None) if label_groups else None)
        self.base_inputs = embed_dim or vocab_size
        self.lstm = nn.LSTM(self.base_inputs + (label_dim if self.cond else 0), hidden, num_layers=layers,
                            batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def _inputs(self, ids: torch.Tensor, slots: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(ids) if self.embed is not None else F.one_hot(ids, self.vocab_size).float()
        if self.cond is not None:
            x = torch.cat([x, self.cond(self.cond.slots(ids) if slots is None else slots)], -1)
        return x

    def logits(self, ids: torch.Tensor, state=None, slots: torch.Tensor | None = None):
        out, state = self.lstm(self._inputs(ids, slots), state)
        return self.head(self.drop(out)), state

    def forward(self, batch, mode: str = "loss", step: int = 0):
        tokens, slots = batch["tokens"], None
        if self.cond is not None:
            tokens, labels = self.cond.drop(tokens, batch.get("labels"))
            slots = self.cond.slots(tokens, labels, batch.get("since"))[:, :-1]
        x, y = tokens[:, :-1], tokens[:, 1:]
        if self.target == "last":  # the seed: one prediction per window
            out, _ = self.lstm(self._inputs(x, slots))
            logits = self.head(self.drop(out[:, -1]))
            y = y[:, -1]
            loss = F.cross_entropy(logits.float(), y)
            acc = (logits.argmax(-1) == y).float().mean()
            return {"loss": loss, "acc": acc}
        logits, _ = self.logits(x, slots=slots)
        return next_token_loss(logits, x, y, self.delimiter_id, self.mask_delimiter_runs)

    # ----------------------------------------------------------------- sampling
    @staticmethod
    def pick(logits: torch.Tensor, temperature: float, top_k: int | None, generator=None) -> torch.Tensor:
        """Sample ids from logits (batch, vocab) with temperature and optional top-k.

        Gumbel-max: ``argmax(logits / T - log E)`` with ``E ~ Exp(1)`` is an exact draw from
        ``softmax(logits / T)``, in fewer operations than softmax + multinomial."""
        if not 0 < temperature < float("inf"):  # also NaN, which would return the argmax of NaNs
            raise TunesmithError(f"temperature must be > 0 and finite, got {temperature}")
        logits = logits.float() / temperature
        if top_k:
            kth = torch.topk(logits, min(int(top_k), logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        noise = torch.empty_like(logits).exponential_(generator=generator).log_()
        return (logits - noise).argmax(-1)

    def _primed(self, codec, n: int, primer: str | None, labels: list[int] | None = None):
        seq_len = codec.seq_len
        primer_ids = codec.parse_primer(primer) if primer else []
        lab = self.cond.prefix(labels or []) if self.cond is not None else []
        start = torch.tensor([[self.delimiter_id] * seq_len + lab + primer_ids] * n, device=self.device)
        return start, primer_ids

    def _guided_start(self, start: torch.Tensor, guidance: float) -> torch.Tensor:
        """The primed context, plus its unconditioned copy below it when guidance is on (``guidance != 1``)."""
        if guidance != 1.0:
            if self.cond is None:
                raise TunesmithError("--guidance needs a conditioned model (trained with data.condition)")
            return torch.cat([start, self.cond.unconditioned(start)])
        return start

    def _stepper(self, cond=None, n: int | None = None, guidance: float = 1.0):
        """A one-token step of the trained network as plain tensor ops (eval mode): the input projection of
        a one-hot/embedded symbol is a row lookup, so each step costs two small matmuls per layer instead of
        a call into ``nn.LSTM`` (0.25 s -> 0.13 s for 16 x 512 tokens on 2 CPU cores)."""
        L = self.lstm.num_layers
        B = self.base_inputs
        w = [(getattr(self.lstm, f"weight_ih_l{k}"), getattr(self.lstm, f"weight_hh_l{k}"),
              getattr(self.lstm, f"bias_ih_l{k}") + getattr(self.lstm, f"bias_hh_l{k}")) for k in range(L)]
        emb = self.embed.weight if self.embed is not None else None
        table = (emb @ w[0][0][:, :B].T if emb is not None else w[0][0][:, :B].T) + w[0][2]  # (vocab, 4H)
        # a conditioned model: ``cond(t)`` is the labels' (and bar position's) input of the t-th sampled symbol,
        # one gate bias per row
        wc = w[0][0][:, B:].T.contiguous() if cond is not None else None
        mask = self.cond.label_ids if self.cond is not None else None
        counter = [0]
        head_w, head_b = self.head.weight.T.contiguous(), self.head.bias
        whh = [wk[1].T.contiguous() for wk in w]
        wih = [None] + [wk[0].T.contiguous() for wk in w[1:]]

        def step(tok, h, c):
            x = None
            h, c = list(h), list(c)
            cbias = None
            if cond is not None:
                cbias = cond(counter[0]) @ wc
                counter[0] += 1
                if cbias.shape[0] > tok.shape[0]:
                    tok = torch.cat([tok, tok])   # guidance: the unconditioned rows see the same symbols
            for k in range(L):
                gates = (table[tok] if k == 0 else torch.addmm(w[k][2], x, wih[k])).addmm_(h[k], whh[k])
                if k == 0 and cbias is not None:
                    gates = gates + cbias
                i, f, g, o = gates.chunk(4, 1)
                c[k] = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
                h[k] = torch.sigmoid(o) * torch.tanh(c[k])
                x = h[k]
            out = torch.addmm(head_b, x, head_w)
            return (guided(out, n, guidance, mask) if mask is not None else out), h, c
        return step

    @torch.no_grad()
    def sample_ids(self, codec, n: int, primer: str | None = None, temperature: float = 1.0,
                   top_k: int | None = None, steps: int = 256, generator=None, labels: list[int] | None = None,
                   guidance: float = 1.0) -> list[list[int]]:
        """N continuations in one batch, stepping the LSTM state token by token. Each stops at '/'.
        ``labels``: condition label-token ids (a conditioned model; missing kinds are null); ``guidance``:
        classifier-free guidance scale (1 = off)."""
        was_training = self.training
        self.eval()
        start, primer_ids = self._primed(codec, n, primer, labels)
        start = self._guided_start(start, guidance)
        slots = self.cond.slots(start) if self.cond is not None else None
        logits, (h, c) = self.logits(start, slots=slots)
        last = logits[:, -1]
        if self.cond is not None:
            last = guided(last, n, guidance, self.cond.label_ids)
        last = self.not_the_end(last)
        h, c = list(h.unbind(0)), list(c.unbind(0))
        cond = None
        if self.cond is not None:
            last_slots, since_last = slots[:, -1], self.cond.since(start)[:, -1]
            cond = lambda t: self.cond(self.cond.step_slots(last_slots, since_last, t))  # noqa: E731
        step = self._stepper(cond, n, guidance)
        if self.device.type == "cuda" and steps >= 2 * GRAPH_CHUNK and self.cond is None:
            out = self._sample_chunked(step, last, h, c, n, steps, temperature, top_k, generator, graph=True)
        else:
            out = torch.empty(n, steps, dtype=torch.long, device=self.device)
            for t in range(steps):
                nxt = self.pick(last, temperature, top_k, generator)
                out[:, t] = nxt
                last, h, c = step(nxt, h, c)
        self.train(was_training)
        return self._melodies(primer_ids, out)

    def _sample_chunked(self, step, last, h, c, n, steps, temperature, top_k, generator, graph: bool,
                        chunk: int = 0) -> torch.Tensor:
        """Sampling in chunks of ``chunk`` tokens whose Gumbel noise is drawn up front, one kernel per chunk.
        On a GPU one token costs ~20 tiny kernels, so the loop is launch-bound: with ``graph`` the chunk is
        captured once as a CUDA graph and replayed (one launch per chunk). The same code runs eagerly
        (``graph=False``), which is how it is tested on CPU against the token-by-token loop."""
        chunk = chunk or GRAPH_CHUNK
        if temperature <= 0:
            raise TunesmithError(f"temperature must be > 0, got {temperature}")
        V = last.shape[-1]
        s_last = last.float().clone()
        s_h, s_c = [x.clone() for x in h], [x.clone() for x in c]
        s_noise = torch.empty(chunk, n, V, device=last.device)
        s_out = torch.empty(n, chunk, dtype=torch.long, device=last.device)

        def body():
            lg, hh, cc = s_last, list(s_h), list(s_c)
            for j in range(chunk):
                x = lg / temperature
                if top_k:
                    kth = torch.topk(x, min(int(top_k), V), dim=-1).values[:, -1:]
                    x = x.masked_fill(x < kth, float("-inf"))
                nxt = (x - s_noise[j].log()).argmax(-1)
                s_out[:, j] = nxt
                lg, hh, cc = step(nxt, hh, cc)
                lg = lg.float()
            s_last.copy_(lg)
            for k in range(len(hh)):
                s_h[k].copy_(hh[k]); s_c[k].copy_(cc[k])

        run = body
        if graph:
            try:
                saved = (s_last.clone(), [x.clone() for x in s_h], [x.clone() for x in s_c])
                s_noise.fill_(1.0)
                side = torch.cuda.Stream()
                # after the clones and the fill are queued: the warm-up must not overwrite the state before
                # it is saved, nor read s_noise before it is filled (torch.empty: garbage, log -> NaN)
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    body()                              # warm-up outside the capture
                torch.cuda.current_stream().wait_stream(side)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    body()
                s_last.copy_(saved[0])                  # capture ran nothing, but restore to be safe
                for k in range(len(s_h)):
                    s_h[k].copy_(saved[1][k]); s_c[k].copy_(saved[2][k])
                run = g.replay
            except Exception as e:  # pragma: no cover - depends on the driver
                import warnings

                warnings.warn(f"CUDA graph capture failed ({type(e).__name__}); sampling without it")
                return self._sample_chunked(step, last, h, c, n, steps, temperature, top_k, generator, False, chunk)
        pieces = []
        for _ in range(-(-steps // chunk)):
            s_noise.exponential_(generator=generator)
            run()
            pieces.append(s_out.clone())
        return torch.cat(pieces, 1)[:, :steps]

    @torch.no_grad()
    def sample_ids_window(self, codec, n: int, primer: str | None = None, temperature: float = 1.0,
                          top_k: int | None = None, steps: int = 256, generator=None) -> list[list[int]]:
        """The seed's way, for comparison: re-run the last ``seq_len`` tokens for every new token."""
        if self.cond is not None:
            raise TunesmithError("sample_ids_window is the unconditioned comparison; use sample_ids")
        seq, primer_ids = self._primed(codec, n, primer)
        for t in range(steps):
            logits, _ = self.logits(seq[:, -codec.seq_len:])
            last = self.not_the_end(logits[:, -1]) if t == 0 else logits[:, -1]
            seq = torch.cat([seq, self.pick(last, temperature, top_k, generator)[:, None]], 1)
        return self._melodies(primer_ids, seq[:, codec.seq_len + len(primer_ids):])

    def not_the_end(self, logits: torch.Tensor) -> torch.Tensor:
        """The first generated symbol's logits without the end of the song ('/'): a sample is never empty. After the
        delimiters that start a song the next '/' is masked out of the loss (next_token_loss), so its probability
        there is not what training fitted; the GPU-trained zoo Transformer drew it 4 times in 100 label-free samples."""
        logits = logits.clone()
        logits[:, self.delimiter_id] = float("-inf")
        return logits

    def _melodies(self, primer_ids: list[int], generated: torch.Tensor) -> list[list[int]]:
        """Primer + each generated row up to its first '/' (the end of the song)."""
        res = []
        for row in generated.tolist():
            if self.delimiter_id in row:
                row = row[: row.index(self.delimiter_id)]
            res.append(primer_ids + row)
        return res

    @torch.no_grad()
    def generate(self, codec, n: int, primer: str | None = None, temperature: float = 1.0,
                 top_k: int | None = None, steps: int = 256, tempo: float = 120.0, generator=None,
                 condition: str | None = None, guidance: float = 1.0):
        """``condition`` (``"metre=3/4,mode=minor"``) gives a model trained with ``data.condition`` its labels
        (a kind left out is the null label); an unknown label raises one line listing the valid ones.
        ``guidance`` > 1 pushes the samples towards the labels (classifier-free guidance)."""
        if not (isinstance(guidance, (int, float)) and 0 <= guidance <= 20):
            raise TunesmithError(f"--guidance must be a number from 0 to 20 (1 = plain conditional), got {guidance}")
        labels = codec.encode(codec.condition_symbols(condition)) if condition else []
        if self.cond is None and guidance != 1.0:
            raise TunesmithError("--guidance needs a conditioned model (trained with data.condition)")
        if self.cond is None:
            ids = self.sample_ids(codec, n, primer, temperature, top_k, steps, generator)
        else:
            ids = self.sample_ids(codec, n, primer, temperature, top_k, steps, generator, labels=labels,
                                  guidance=guidance if labels else 1.0)
        return [codec.decode(labels + r, tempo=tempo) for r in ids]
