"""Coconet chorale harmoniser: grid encoding, masks, the masked-infilling loss, Gibbs sampling, harmonising."""
import numpy as np
import pytest
import torch

from tunesmith.data.coconet_data import (HIGH, LOW, REST, ROWS, ChoraleGridCodec, ChoraleGrids, grid_to_rows,
                                         grid_to_score, random_masks, rows_to_grid, score_to_grid)
from tunesmith.data.notes import Score
from tunesmith.errors import TunesmithError
from tunesmith.models.coconet import Coconet, parallel_counts


def chorale():
    # S A T B, quarter notes and one half note, one rest in the alto
    notes = [(72, 0, 1, 90, 0), (74, 1, 1, 90, 0), (76, 2, 2, 90, 0),
             (67, 0, 1, 90, 1), (65, 1, 1, 90, 1), (67, 3, 1, 90, 1),
             (64, 0, 2, 90, 2), (60, 2, 2, 90, 2),
             (48, 0, 1, 90, 3), (50, 1, 0.5, 90, 3), (52, 1.5, 0.5, 90, 3), (48, 2, 2, 90, 3)]
    return Score.from_notes(notes, end=4.0)


def small_model(**kw):
    torch.manual_seed(0)
    return Coconet(n_voices=4, n_rows=ROWS, channels=kw.pop("channels", 8), blocks=kw.pop("blocks", 2), **kw)


def test_grid_round_trip():
    s = chorale()
    g = score_to_grid(s)
    assert g.shape == (4, 16)
    assert list(g[1, 8:12]) == [REST] * 4 and list(g[3, 4:8]) == [50, 50, 52, 52]
    back = grid_to_score(g)
    assert back.notes() == s.notes()
    assert sorted(set(back.track.tolist())) == [0, 1, 2, 3]
    assert (rows_to_grid(grid_to_rows(g)) == g).all()
    assert grid_to_rows(g)[1, 8] == 0 and grid_to_rows(g)[0, 0] == 72 - LOW + 1
    with pytest.raises(TunesmithError, match="outside"):
        grid_to_rows(np.array([[HIGH + 1]]))


def test_transposition_stays_in_the_grid_and_shifts_all_voices_alike():
    g = np.stack([score_to_grid(chorale())] * 64).astype(np.int16)
    g[0, :, :] = np.where(g[0] == REST, REST, g[0] + (HIGH - 76))  # this window touches the top of the grid
    ds = ChoraleGrids(torch.tensor(g), torch.zeros(64, dtype=torch.long), transpose=6)
    torch.manual_seed(0)
    rows = ds.batch(torch.arange(64))["rows"]
    assert rows.min() >= 0 and rows.max() < ROWS
    pitches = rows_to_grid(rows.numpy())
    shifts = set()
    for orig, new in zip(g, pitches):
        d = (new.astype(int) - orig)[orig != REST]
        assert len(set(d.tolist())) == 1 and ((new == REST) == (orig == REST)).all()
        shifts.add(int(d[0]))
    assert shifts <= set(range(-6, 7)) and len(shifts) > 5
    assert max(new.max() for new in pitches[:1]) <= HIGH


def test_random_masks():
    g = torch.Generator().manual_seed(0)
    m = random_masks(2000, 4, 32, g, p_keep_soprano=0.5)
    assert m.shape == (2000, 4, 32)
    assert (m.flatten(1).sum(1) >= 1).all()
    kept = m[:, 0].sum(1) == 0
    assert 0.45 < kept.float().mean() < 0.6
    rates = m[:, 1:].mean((1, 2))
    assert 0.4 < rates.mean() < 0.6 and rates.min() < 0.05 and rates.max() > 0.95  # rate uniform in (0, 1]


def test_erased_cells_are_invisible_to_the_network():
    model = small_model().eval()
    rows = torch.tensor(grid_to_rows(score_to_grid(chorale())))[None]
    mask = torch.zeros(1, 4, 16)
    mask[0, 1:, 4:8] = 1
    other = rows.clone()
    other[0, 1:, 4:8] = 5  # different notes where erased
    a, b = model.logits(rows, mask), model.logits(other, mask)
    assert torch.equal(a, b)
    other[0, 0, 0] = 5  # a visible change does change the output
    assert not torch.equal(a, model.logits(other, mask))


def test_loss_counts_only_erased_cells_and_falls():
    model = small_model()
    rows = torch.tensor(grid_to_rows(score_to_grid(chorale())))[None].repeat(8, 1, 1)
    mask = random_masks(8, 4, 16, torch.Generator().manual_seed(1))
    out = model({"rows": rows, "mask": mask, "phase": torch.zeros(8, dtype=torch.long)})
    logits = model.logits(rows, mask)
    nll = torch.nn.functional.cross_entropy(logits.permute(0, 3, 1, 2), rows, reduction="none")
    want = ((nll * mask).sum((1, 2)) / mask.sum((1, 2))).mean()
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    first = None
    for _ in range(40):
        loss = model({"rows": rows})["loss"]
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert model({"rows": rows, "mask": mask})["loss"].item() < 0.5 * first


def test_gibbs_keeps_given_cells_and_harmonize_keeps_the_melody_exactly():
    model = small_model()
    codec = ChoraleGridCodec()
    # repeated notes and an off-grid triplet: kept exactly because the output soprano is the melody itself
    mel = Score.from_notes([(67, 0, 1), (67, 1, 1), (69, 2, 2 / 3), (71, 2 + 2 / 3, 2 / 3), (72, 10 / 3, 2 / 3),
                            (74, 4, 2)], tempo=72)
    outs = model.harmonize(codec, mel, n=3, generator=torch.Generator().manual_seed(0), steps=6)
    assert len(outs) == 3
    for sc in outs:
        sop = sc.select(sc.track == 0)
        assert sop.notes() == mel.notes()
        assert sorted(set(sc.track.tolist())) <= [0, 1, 2, 3] and sc.tempo == 72
        for v in (1, 2, 3):  # one note at a time per voice
            s = sc.select(sc.track == v)
            assert (s.start[1:] >= s.start[:-1] + s.duration[:-1] - 1e-9).all()
    rows = torch.tensor(grid_to_rows(score_to_grid(chorale())))[None].repeat(2, 1, 1)
    fill = torch.zeros_like(rows, dtype=torch.bool)
    fill[:, 2, :8] = True
    out = model.gibbs(rows, fill, steps=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[~fill], rows[~fill])
    g = torch.Generator().manual_seed(3)
    again = model.gibbs(rows, fill, steps=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # reproducible with a seeded generator
    assert g is not None


def test_infill_and_compose_shapes():
    model = small_model()
    codec = ChoraleGridCodec()
    s = chorale()
    erase = np.zeros((4, 16), bool)
    erase[:, 4:8] = True  # the second beat of every voice
    filled = model.infill(codec, s, erase, n=1, generator=torch.Generator().manual_seed(0), steps=4)[0]
    g0, g1 = score_to_grid(s, n_steps=16), score_to_grid(filled, n_steps=16)
    assert (g0[~erase] == g1[~erase]).all()
    # notes that touch no erased cell are kept exactly, repeated notes too (a grid alone would merge them)
    rep = Score.from_notes([(72, 0, 1, 90, 0), (72, 1, 1, 90, 0), (72, 2, 1, 90, 0), (60, 0, 3, 90, 1)], end=3.0)
    er = np.zeros((4, 12), bool)
    er[1, 4:8] = True  # cuts the alto's only note
    out = model.infill(codec, rep, er, n=1, generator=torch.Generator().manual_seed(0), steps=4)[0]
    assert out.select(out.track == 0).notes() == rep.select(rep.track == 0).notes()
    alto = score_to_grid(out, n_steps=12)[1]
    assert (alto[:4] == 60).all() and (alto[8:] == 60).all()  # the cut note's other cells come back as they were
    pieces = model.compose(codec, 2, length=24, generator=torch.Generator().manual_seed(0), steps=4)
    assert len(pieces) == 2 and all(p.length <= 6.0 for p in pieces)


def test_sample_cli_harmonises_a_midi_melody(tmp_path):
    """A tiny trained run, then `tunesmith sample RUN --melody FILE.mid`: four tracks, soprano first."""
    from tunesmith.cli import main
    from tunesmith.data.midi import read_midi, write_midi

    cfg = tmp_path / "c.toml"
    cfg.write_text('name = "t"\n[data]\nencoding = "chorale_grid"\nmax_pieces = 6\nval_windows = 8\n'
                   '[model]\nname = "coconet"\nchannels = 8\nblocks = 1\n'
                   '[train]\nmax_steps = 2\nbatch_size = 4\nlog_every = 1\n[sample]\ngibbs_steps = 3\n')
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run), "--device", "cpu", "--quiet"]) == 0
    mel = Score.from_notes([(67, 0, 1), (67, 1, 1), (69, 2, 1), (71, 3, 1), (72, 4, 4)], tempo=90)
    write_midi(mel, tmp_path / "m.mid")
    out = tmp_path / "h"
    assert main(["sample", str(run), "--melody", str(tmp_path / "m.mid"), "--num", "2", "--seed", "0",
                 "--out", str(out)]) == 0
    files = sorted(out.glob("*.mid"))
    assert len(files) == 2
    back = read_midi(files[0])
    assert back.select(back.track == 0).notes() == mel.notes()
    assert len(set(back.track.tolist())) >= 2
    assert main(["sample", str(run), "--melody", str(tmp_path / "nope.mid"), "--out", str(out)]) == 1
    assert main(["sample", str(run), "--num", "1", "--steps", "16", "--seed", "0", "--out", str(tmp_path / "c")]) == 0


def test_parallel_counts_match_the_voice_leading_metric():
    from tunesmith.evaluation.voice_leading import parallels

    rows = torch.tensor(grid_to_rows(np.array([[72, 74], [65, 67]])))[None]
    c = parallel_counts(rows, ROWS)
    assert c[0, 0, 1, 74 - LOW + 1] == 1 and c[0, 0, 1, 75 - LOW + 1] == 0   # into 74: a parallel fifth
    assert c[0, 1, 0, 65 - LOW + 1] == 1 and c[0, 1, 0, 0] == 0             # out of 65; a rest never counts
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.integers(-2, 3, 40))
    g = np.array([72, 67, 60, 48])[:, None] + walk[None]  # parallel chords: octaves and fifths at every move
    g[rng.random(g.shape) < 0.2] += 1  # ... some of them broken
    rows = torch.tensor(grid_to_rows(g))[None]
    at_actual = parallel_counts(rows, ROWS)[0].gather(-1, rows[0][..., None]).sum()
    p = parallels(grid_to_score(g))
    assert p["fifths"] + p["octaves"] > 3
    assert at_actual == 4 * (p["fifths"] + p["octaves"])  # each parallel touches 2 voices x 2 steps


def test_parallel_penalty_reduces_parallels():
    from tunesmith.evaluation.voice_leading import parallels

    model = small_model()
    rows = torch.zeros(4, 4, 32, dtype=torch.long)
    fill = torch.ones_like(rows, dtype=torch.bool)
    counts = []
    for pen in (0.0, 20.0):
        out = model.gibbs(rows, fill, steps=8, generator=torch.Generator().manual_seed(0), parallel_penalty=pen)
        ps = [parallels(grid_to_score(rows_to_grid(o.numpy()))) for o in out]
        counts.append(sum(p["fifths"] + p["octaves"] for p in ps))
    assert counts[1] < counts[0]
