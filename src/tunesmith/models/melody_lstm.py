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


@register_model("melody_lstm")
class MelodyLSTM(TunesmithModel):
    objective = "likelihood"
    page_kind = "lstm"
    loss_unit = "nats/step"

    def __init__(self, vocab_size: int, delimiter_id: int = 0, hidden: int = 256, layers: int = 1,
                 dropout: float = 0.2, embed_dim: int = 0, target: str = "all", mask_delimiter_runs: bool = True):
        super().__init__()
        self.vocab_size, self.delimiter_id, self.target = vocab_size, delimiter_id, target
        self.mask_delimiter_runs = mask_delimiter_runs
        self.embed = nn.Embedding(vocab_size, embed_dim) if embed_dim else None  # 0 = one-hot, as the seed
        self.lstm = nn.LSTM(embed_dim or vocab_size, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def _inputs(self, ids: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            return self.embed(ids)
        return F.one_hot(ids, self.vocab_size).float()

    def logits(self, ids: torch.Tensor, state=None):
        out, state = self.lstm(self._inputs(ids), state)
        return self.head(self.drop(out)), state

    def forward(self, batch, mode: str = "loss", step: int = 0):
        tokens = batch["tokens"]
        x, y = tokens[:, :-1], tokens[:, 1:]
        if self.target == "last":  # the seed: one prediction per window
            out, _ = self.lstm(self._inputs(x))
            logits = self.head(self.drop(out[:, -1]))
            y = y[:, -1]
            loss = F.cross_entropy(logits.float(), y)
            acc = (logits.argmax(-1) == y).float().mean()
            return {"loss": loss, "acc": acc}
        logits, _ = self.logits(x)
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

    def _primed(self, codec, n: int, primer: str | None):
        seq_len = codec.seq_len
        primer_ids = codec.parse_primer(primer) if primer else []
        start = torch.tensor([[self.delimiter_id] * seq_len + primer_ids] * n, device=self.device)
        return start, primer_ids

    def _stepper(self):
        """A one-token step of the trained network as plain tensor ops (eval mode): the input projection of
        a one-hot/embedded symbol is a row lookup, so each step costs two small matmuls per layer instead of
        a call into ``nn.LSTM`` (0.25 s -> 0.13 s for 16 x 512 tokens on 2 CPU cores)."""
        L = self.lstm.num_layers
        w = [(getattr(self.lstm, f"weight_ih_l{k}"), getattr(self.lstm, f"weight_hh_l{k}"),
              getattr(self.lstm, f"bias_ih_l{k}") + getattr(self.lstm, f"bias_hh_l{k}")) for k in range(L)]
        emb = self.embed.weight if self.embed is not None else None
        table = (emb @ w[0][0].T if emb is not None else w[0][0].T) + w[0][2]  # (vocab, 4H)
        head_w, head_b = self.head.weight.T.contiguous(), self.head.bias
        whh = [wk[1].T.contiguous() for wk in w]
        wih = [None] + [wk[0].T.contiguous() for wk in w[1:]]

        def step(tok, h, c):
            x = None
            h, c = list(h), list(c)
            for k in range(L):
                gates = (table[tok] if k == 0 else torch.addmm(w[k][2], x, wih[k])).addmm_(h[k], whh[k])
                i, f, g, o = gates.chunk(4, 1)
                c[k] = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
                h[k] = torch.sigmoid(o) * torch.tanh(c[k])
                x = h[k]
            return torch.addmm(head_b, x, head_w), h, c
        return step

    @torch.no_grad()
    def sample_ids(self, codec, n: int, primer: str | None = None, temperature: float = 1.0,
                   top_k: int | None = None, steps: int = 256, generator=None) -> list[list[int]]:
        """N continuations in one batch, stepping the LSTM state token by token. Each stops at '/'."""
        was_training = self.training
        self.eval()
        start, primer_ids = self._primed(codec, n, primer)
        logits, (h, c) = self.logits(start)
        last = logits[:, -1]
        h, c = list(h.unbind(0)), list(c.unbind(0))
        step = self._stepper()
        if self.device.type == "cuda" and steps >= 2 * GRAPH_CHUNK:
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
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                saved = (s_last.clone(), [x.clone() for x in s_h], [x.clone() for x in s_c])
                s_noise.fill_(1.0)
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
        seq, primer_ids = self._primed(codec, n, primer)
        for _ in range(steps):
            logits, _ = self.logits(seq[:, -codec.seq_len:])
            seq = torch.cat([seq, self.pick(logits[:, -1], temperature, top_k, generator)[:, None]], 1)
        return self._melodies(primer_ids, seq[:, codec.seq_len + len(primer_ids):])

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
                 condition: str | None = None):
        """``condition`` (``"metre=3/4"``) puts the model's label token before the primer (a model trained
        with ``data.condition``); an unknown label raises one line listing the valid ones."""
        labels = codec.condition_symbols(condition) if condition else []
        if labels:
            primer = " ".join(labels + ([str(primer)] if primer else []))
        ids = self.sample_ids(codec, n, primer, temperature, top_k, steps, generator)
        return [codec.decode(r, tempo=tempo) for r in ids]
