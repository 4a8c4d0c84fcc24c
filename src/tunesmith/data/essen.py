"""The shared melody preparation of the Essen-style families (time-step LSTM/Transformer, tuples, GAN notes,
88-key tokens, melody phrases, evaluation): which melodies are kept -- every note duration in an accepted set,
onsets on the step grid -- their transposition to C major / A minor, and the (train, validation) split by piece.

It knows no encoding: an encoding module (``timestep``, ``tuples``, ``gan_data``, ``tokens``...) takes the
prepared ``Score``s and encodes them its own way.
"""
from __future__ import annotations

import sys
from collections import Counter

import numpy as np

from ..errors import TunesmithError
from .corpora import load_corpus, split_by_piece
from .notes import Score, transposition_to_c_or_a

#: the note durations (beats) seed 000 accepts: 16th, 8th, dotted 8th, quarter, dotted quarter, half, dotted half, whole
SEED_DURATIONS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


def check_durations(score: Score, durations=SEED_DURATIONS, step: float = 0.25) -> str | None:
    """None when the melody is acceptable, else the reason it is dropped."""
    if len(score) == 0:
        return "no notes"
    bad = set(np.round(score.duration, 6).tolist()) - set(float(d) for d in np.atleast_1d(durations))  # 0.5 = [0.5]
    if bad:
        return f"note duration {min(bad):g} not in the accepted set"
    grid = score.start / step
    if not np.allclose(grid, np.round(grid), atol=1e-6):
        return f"onsets off the {step:g}-beat grid"
    return None


def prepare_melodies(scores: list[Score], step: float, durations, transpose: bool,
                     verbose: bool = True) -> tuple[list[Score], Counter]:
    """Filter (:func:`check_durations`) and transpose to C major / A minor; report how many songs were kept and
    why the others were dropped. Returns the kept scores (in order) and the count of each reason."""
    kept, reasons = [], Counter()
    for sc in scores:
        why = check_durations(sc, durations, step)
        if why is not None:
            reasons[why.split(" not in")[0].split(" off")[0] if "duration" in why else why] += 1
            continue
        if transpose:
            sc = sc.transpose(transposition_to_c_or_a(sc.estimate_key()))
        kept.append(sc)
    if verbose:
        detail = "; ".join(f"{n} for {r}" for r, n in reasons.most_common()) or "none"
        print(f"kept {len(kept)} of {len(scores)} songs (dropped {sum(reasons.values())}: {detail})",
              file=sys.stderr, flush=True)
    if not kept:
        raise TunesmithError(f"no song passed the duration filter ({dict(reasons)}); "
                             "set data.durations to the lengths your music uses")
    return kept, reasons


def prepared_songs(dataset: str = "essen-erk", durations=SEED_DURATIONS, step: float = 0.25,
                   transpose: bool = True, val_fraction: float = 0.1, split_seed: int = 0,
                   max_pieces: int | None = None, verbose: bool = True) -> tuple[list[Score], list[Score]]:
    """The (train, validation) melodies exactly as the ``timestep`` encoding splits them (filtered,
    transposed): evaluation uses the validation half as the held-out reference."""
    scores = load_corpus(dataset)
    if max_pieces:
        scores = scores[:max_pieces]
    kept, _ = prepare_melodies(scores, step, durations, transpose, verbose)
    return split_by_piece(kept, val_fraction, split_seed)
