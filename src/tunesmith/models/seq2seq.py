"""Seed 001's seq2seq LSTM: a 2-layer LSTM encoder reads 100 one-hot symbols (notes/chords), a 2-layer LSTM
decoder started from the encoder's final state predicts the next 100 (teacher forcing: its input is the
target shifted right, starting from the last input symbol), dropout 0.2 between the layers, softmax output,
categorical cross-entropy, Adam 1e-3. Generation encodes the primer (padded with rests on the left) and
samples the decoder step by step with a temperature; longer pieces re-encode the last 100 symbols.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TunesmithError
from .base import TunesmithModel, register_model


@register_model("seq2seq")
class Seq2SeqLSTM(TunesmithModel):
    objective = "likelihood"
    page_kind = "lstm"

    def __init__(self, vocab_size: int, seq_len: int = 100, rest_id: int = 0, hidden: int = 256, layers: int = 2,
                 dropout: float = 0.2):
        super().__init__()
        self.vocab_size, self.seq_len, self.rest_id = int(vocab_size), int(seq_len), int(rest_id)
        self.encoder = nn.LSTM(vocab_size, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0)
        self.decoder = nn.LSTM(vocab_size, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def _x(self, ids):
        return F.one_hot(ids, self.vocab_size).float()

    def forward(self, batch, mode: str = "loss", step: int = 0):
        tok = batch["tokens"]
        L = tok.shape[1] // 2
        src, tgt = tok[:, :L], tok[:, L:]
        _, state = self.encoder(self._x(src))
        dec_in = torch.cat([src[:, -1:], tgt[:, :-1]], 1)
        out, _ = self.decoder(self._x(dec_in), state)
        logits = self.head(self.drop(out))
        loss = F.cross_entropy(logits.float().reshape(-1, self.vocab_size), tgt.reshape(-1))
        acc = (logits.argmax(-1) == tgt).float().mean()
        return {"loss": loss, "acc": acc}

    @torch.no_grad()
    def generate(self, codec, n: int, primer: str | None = None, temperature: float = 1.0, steps: int | None = None,
                 tempo: float = 120.0, generator=None):
        if temperature <= 0:
            raise TunesmithError(f"temperature must be > 0, got {temperature}")
        steps = int(steps or self.seq_len)
        p = codec.parse_primer(primer) if primer else []
        ctx = ([self.rest_id] * self.seq_len + p)[-self.seq_len:]
        seq = torch.tensor([ctx] * n, device=self.device)
        out = []
        while len(out) < steps:
            _, state = self.encoder(self._x(seq[:, -self.seq_len:]))
            last = seq[:, -1]
            block = []
            for _ in range(min(self.seq_len, steps - len(out))):
                h, state = self.decoder(self._x(last[:, None]), state)
                probs = torch.softmax(self.head(h[:, -1]).float() / temperature, -1)
                last = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                block.append(last)
            block = torch.stack(block, 1)
            seq = torch.cat([seq, block], 1)
            out += [None] * block.shape[1]
        gen = seq[:, self.seq_len:].tolist()  # ctx is exactly seq_len long
        return [codec.decode(p + row, tempo=tempo) for row in gen]
