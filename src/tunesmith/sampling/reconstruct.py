"""``tunesmith sample RUN --reconstruct SET``: encode pieces phrase by phrase, decode them from the posterior
mean, write the MIDI and ``reconstruction.json``.

Measures (over all phrases together):

* ``onset_f1`` -- notes matched by pitch and 16th-note onset (step index within the phrase):
  ``2 * matched / (notes in the input + notes in the reconstruction)``;
* ``token_accuracy`` -- share of time-step symbols (pitch, hold, rest) reproduced exactly;
* ``n_phrases`` and ``n_pieces``.

A set is a dataset (``essen-erk:val`` = the held-out songs exactly as the model's split left them, already
in C major / A minor; ``essen-erk:train``; ``essen-erk``), a folder of music files or one file (each piece
transposed to C major / A minor as in training, and back for the written MIDI).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..data.midi import write_midi
from ..errors import TunesmithError
from ..training.checkpoint import load_run


def load_pieces(spec: str) -> tuple[list, bool, str]:
    """(Scores, whether they still need transposing to C/A, description)."""
    from ..data.corpora import CORPORA, load_corpus
    from ..data.essen import prepared_songs

    spec = str(spec)
    base, _, part = spec.partition(":")
    if base in CORPORA:
        if part not in ("", "train", "val"):
            raise TunesmithError(f"unknown dataset part {part!r} in {spec!r}: use {base}, {base}:train or {base}:val")
        train, val = prepared_songs(base, verbose=False)
        scores = {"train": train, "val": val, "": train + val}[part]
        return scores, False, f"{spec} ({len(scores)} songs, filtered and transposed as in training)"
    p = Path(spec)
    if not p.exists():
        raise TunesmithError(f"{spec} is neither a dataset ({', '.join(CORPORA)}, with :train or :val) nor a file "
                             "or folder")
    if p.is_file():
        from ..data.midi import read_midi

        if p.suffix.lower() not in (".mid", ".midi"):
            raise TunesmithError(f"{spec}: give a MIDI file (.mid) or a folder of music files")
        return [read_midi(p)], True, str(p)
    scores = load_corpus(str(p))
    return scores, True, f"{len(scores)} pieces in {p}"


def onset_f1_counts(a_ids: np.ndarray, b_ids: np.ndarray, pitch_table: np.ndarray) -> tuple[int, int, int]:
    """(matched, notes in a, notes in b) for phrases given as ids: a note is (pitch, step) at a pitch symbol."""
    pa, pb = pitch_table[a_ids], pitch_table[b_ids]
    na, nb = pa >= 0, pb >= 0
    matched = int((na & nb & (pa == pb)).sum())
    return matched, int(na.sum()), int(nb.sum())


def reconstruct(model, codec, scores, transpose: bool = False, batch_size: int = 256, beam: int = 1):
    """Phrases of every piece -> (input ids (N, L), reconstructed ids (N, L), piece index per phrase,
    transposition applied to each piece). ``beam`` > 1: beam search instead of argmax decoding."""
    from ..data.notes import transposition_to_c_or_a

    rows, owner, shifts = [], [], []
    for i, sc in enumerate(scores):
        shift = transposition_to_c_or_a(sc.estimate_key()) if transpose else 0
        ph = codec.phrases(sc.transpose(shift) if shift else sc)
        rows += ph
        owner += [i] * len(ph)
        shifts.append(shift)
    if not rows:
        raise TunesmithError("no phrase to reconstruct: the pieces are empty or shorter than half a phrase")
    x = torch.tensor(rows, dtype=torch.long)
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            b = x[i:i + batch_size].to(model.device)
            mu, _ = model.encode(b)
            outs.append((model.decode_beam(mu, beam) if beam > 1 else model.decode_ids(mu)).cpu())
    return x.numpy(), torch.cat(outs).numpy(), np.array(owner), shifts


def reconstruct_run(run, spec: str, out_dir, device: str = "cpu", max_pieces: int | None = None,
                    tempo: float = 120.0) -> dict:
    """Reconstruct a set with a trained melody VAE; write MIDI and ``reconstruction.json``; return the figures."""
    from ..training.trainer import resolve_device

    model, codec, cfg, _ = load_run(run, resolve_device(device))
    if not hasattr(model, "decode_ids") or not hasattr(codec, "phrases"):
        raise TunesmithError(f"{run} is a {cfg.model.get('name')} model: --reconstruct needs a melody VAE "
                             "(model.name = \"melody_vae\")")
    scores, transpose, what = load_pieces(spec)
    if max_pieces:
        scores = scores[:max_pieces]
    beam = int(cfg.sample.get("beam", 1) or 1)
    x, y, owner, shifts = reconstruct(model, codec, scores, transpose, beam=beam)
    pt = codec.pitch_table()
    m, na, nb = onset_f1_counts(x, y, pt)
    per = [onset_f1_counts(x[i:i + 1], y[i:i + 1], pt) for i in range(len(x))]
    per_f1 = [2 * a / max(b + c, 1) for a, b, c in per]
    res = {"run": str(run), "set": str(spec), "source": what, "n_pieces": len(scores), "n_phrases": int(len(x)),
           "phrase_len": int(codec.seq_len), "onset_f1": round(2 * m / max(na + nb, 1), 6),
           "token_accuracy": round(float((x == y).mean()), 6),
           "onset_f1_phrase_median": round(float(np.median(per_f1)), 6),
           "notes_in": na, "notes_out": nb, "notes_matched": m, "decoding": (f"beam search ({beam} hypotheses, the run's [sample] beam)" if beam > 1 else "argmax")
           + " from the posterior mean"}
    out = Path(out_dir)
    (out / "original").mkdir(parents=True, exist_ok=True)
    (out / "reconstructed").mkdir(parents=True, exist_ok=True)
    for i in range(len(x)):  # one MIDI per phrase, in the piece's own key
        back = -shifts[owner[i]]
        for ids, sub in ((x[i], "original"), (y[i], "reconstructed")):
            sc = codec.decode(ids, tempo=tempo)
            write_midi(sc.transpose(back) if back else sc, out / sub / f"phrase_{i:04d}.mid")
    for i in range(len(scores)):  # each piece, its reconstructed phrases one after the other
        ids = y[owner == i].reshape(-1)
        if len(ids):
            sc = codec.decode(ids, tempo=tempo)
            back = -shifts[i]
            write_midi(sc.transpose(back) if back else sc, out / f"piece_{i:03d}.mid")
    try:
        plot_reconstructions(codec, x[:6], y[:6], out / "reconstruction.png")
        res["figure"] = str(out / "reconstruction.png")
    except Exception as e:  # a figure must never hide the numbers
        print(f"warning: no figure ({e})", file=sys.stderr)
    from ..config import save_json

    save_json(res, out / "reconstruction.json")
    print(f"{res['n_phrases']} phrases of {res['n_pieces']} pieces: onset F1 {res['onset_f1']:.4f}, token accuracy "
          f"{res['token_accuracy']:.4f}; wrote {out}/reconstruction.json, original/, reconstructed/ and piece_*.mid",
          file=sys.stderr)
    return res


def plot_reconstructions(codec, x, y, path: Path, title: str = "input (grey) and reconstruction (orange)") -> Path:
    """Piano rolls of phrases: the input as grey bars, the reconstruction as orange outlines."""
    from ..files import pyplot, save_figure

    plt = pyplot()
    k = len(x)
    fig, axes = plt.subplots(k, 1, figsize=(9, 1.5 * k + 0.4), dpi=100, squeeze=False)
    for ax, a, b in zip(axes[:, 0], x, y):
        for ids, kw in ((a, dict(color="#999", alpha=0.8)), (b, dict(fill=False, edgecolor="#d2691e", lw=1.5))):
            sc = codec.decode(ids)
            for p, s, d in zip(sc.pitch, sc.start, sc.duration):
                ax.add_patch(plt.Rectangle((s * 4, p - 0.4), d * 4, 0.8, **kw))
        pitches = [p for ids in (a, b) for p in codec.decode(ids).pitch] or [60]
        ax.set_xlim(0, codec.seq_len); ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
        ax.set_xticks(range(0, codec.seq_len + 1, codec.steps_per_bar)); ax.grid(axis="x", alpha=0.4)
        ax.set_ylabel("pitch")
    axes[-1, 0].set_xlabel("16th-note step")
    axes[0, 0].set_title(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
