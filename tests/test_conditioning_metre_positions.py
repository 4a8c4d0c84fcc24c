"""Issue 16, item 3: per-metre bar positions of the Transformer (``model.metre_positions``,
``models/melody_transformer.py: MetrePositions``). 3/4 and 6/8 both have a 12-step bar; the shared bar positions
gave them the same embedding rows, so only the label could tell the grouping apart. Here each metre has its own."""
import csv
import textwrap

import pytest
import torch
from conftest import tiny_toml

from tunesmith.errors import TunesmithError

# vocab: / _ r 60 <metre=3/4> <metre=6/8> <mode=major> <mode=minor>; both metres: 12-step bars
GROUPS = {"metre": [4, 5], "mode": [6, 7]}
BARS = {4: 12, 5: 12}


def _tiny(**kw):
    from tunesmith.models.melody_transformer import MelodyTransformer

    torch.manual_seed(0)
    return MelodyTransformer(8, 0, d_model=16, layers=1, heads=2, ff=32, max_len=64, dropout=0.0,
                             prime_delimiters=4, label_groups=GROUPS, label_dropout=0.0, bar_positions=True,
                             bar_steps=BARS, **kw)


def test_3_4_and_6_8_get_their_own_position_rows_and_sampling_continues_the_count():
    from tunesmith.models.melody_lstm import LabelConditioning
    from tunesmith.models.melody_transformer import MetrePositions

    mp = MetrePositions(8, 0, GROUPS, 4, 0.0, BARS)
    shared = LabelConditioning(8, 0, GROUPS, 4, 0.0, BARS)
    song = [3] + [1] * 29
    three, six = torch.tensor([[0, 0, 4, 7] + song]), torch.tensor([[0, 0, 5, 7] + song])
    p3, p6 = mp.slots(three)[0, 4:, -1].tolist(), mp.slots(six)[0, 4:, -1].tolist()
    assert shared.slots(three)[0, 4:, -1].tolist() == shared.slots(six)[0, 4:, -1].tolist()   # the old way
    assert not set(p3) & set(p6)                                  # per metre: disjoint rows
    assert [p - p3[0] for p in p3] == [t % 12 for t in range(30)]  # still the position in a 12-step bar
    assert [p - p6[0] for p in p6] == [t % 12 for t in range(30)]
    assert mp.embed.num_embeddings == mp.pos0 + 2 * mp.MAX_BAR + 1 and max(p3 + p6) < mp.embed.num_embeddings - 1
    # no metre (mode only, or a dropped metre label) -> the one null position; the label columns are unchanged
    null = mp.embed.num_embeddings - 1
    no_metre = torch.tensor([[0, 0, 0, 7] + song])
    assert set(mp.slots(no_metre)[0, :, -1].tolist()) == {null}
    assert mp.slots(six)[..., :-1].tolist() == shared.slots(six)[..., :-1].tolist()
    # the sampler's slot of the t-th new symbol is the one the whole sequence would give it
    ctx = six[:, :10]
    nxt = mp.step_slots(mp.slots(ctx)[:, -1], mp.since(ctx)[:, -1], 5)
    assert nxt[0].tolist() == mp.slots(six[:, :16])[0, -1].tolist()


def test_a_6_8_batch_trains_only_the_6_8_position_rows():
    m = _tiny(metre_positions=True)
    with torch.no_grad():
        m.cond.embed.weight.normal_(0, 0.1)
    song = [3, 1, 2, 3, 1, 1] * 5
    m(({"tokens": torch.tensor([[0, 0, 5, 7] + song])}))["loss"].backward()
    g = m.cond.embed.weight.grad.abs().sum(-1)
    rows3 = slice(m.cond.pos0, m.cond.pos0 + 12)                                # 3/4's bar
    rows6 = slice(m.cond.pos0 + m.cond.MAX_BAR, m.cond.pos0 + m.cond.MAX_BAR + 12)  # 6/8's bar
    assert (g[rows3] == 0).all() and (g[rows6] > 0).all()
    # the shared positions: the same batch trains the rows a 3/4 song uses too
    s = _tiny()
    with torch.no_grad():
        s.cond.embed.weight.normal_(0, 0.1)
    s(({"tokens": torch.tensor([[0, 0, 5, 7] + song])}))["loss"].backward()
    assert (s.cond.embed.weight.grad.abs().sum(-1)[s.cond.pos0:s.cond.pos0 + 12] > 0).all()


def test_cached_sampling_matches_the_full_forward_with_metre_positions():
    m = _tiny(metre_positions=True).eval()
    with torch.no_grad():
        for p in m.parameters():                              # a random network whose choices vary
            p.normal_(0, 0.5)
        m.cond.embed.weight.normal_(0, 1.0)                 # make the positions matter
        m.head.bias[0] = -1e4                                 # never end the song: compare all 40 steps

    class Codec:  # the two things sample_ids needs of a codec
        vocab = ["/", "_", "r", "60", "<metre=3/4>", "<metre=6/8>", "<mode=major>", "<mode=minor>"]

        def parse_primer(self, p):
            return []

    start = m._primed(1, [], [5, 7])
    ids = m.sample_ids(Codec(), 1, steps=40, temperature=1e-4, labels=[5, 7],
                       generator=torch.Generator().manual_seed(0))[0]
    full = torch.tensor([start[0].tolist() + ids])
    greedy = m.logits(full)[0].index_fill(-1, m.cond.label_ids, float("-inf")).argmax(-1)
    n = start.shape[1]
    assert len(ids) == 40 and len(set(ids)) > 1 and greedy[n - 1:-1].tolist() == ids


def test_the_benchmarks_rerun_sampler_serves_a_conditioned_model_and_agrees_with_the_cache():
    """benchmarks/bench_transformer.py compares sample_ids (key/value cache) with sample_ids_window (re-run
    the context); the second refused conditioned models, so the benchmark failed on zoo:essen-transformer."""
    m = _tiny(metre_positions=True).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)
        m.head.bias[0] = -1e4

    class Codec:
        def parse_primer(self, p):
            return []

    for labels in ([5, 7], None):     # with labels, and the label-free mode (labels dropped)
        kw = dict(steps=40, labels=labels)      # the same draws from the same logits, seed for seed
        cached = m.sample_ids(Codec(), 2, generator=torch.Generator().manual_seed(0), **kw)
        rerun = m.sample_ids_window(Codec(), 2, generator=torch.Generator().manual_seed(0), **kw)
        assert cached == rerun and len(set(cached[0])) > 1 and not set(cached[0]) & {4, 5, 6, 7}


def test_metre_positions_need_bar_positions():
    from tunesmith.models.melody_transformer import MelodyTransformer

    with pytest.raises(TunesmithError, match="bar_positions"):
        MelodyTransformer(8, 0, d_model=16, layers=1, heads=2, ff=32, max_len=64, label_groups=GROUPS,
                          bar_steps=BARS, metre_positions=True)
    # labels without a metre kind (a folder whose songs share one metre): the plain conditioning, no error
    m = MelodyTransformer(8, 0, d_model=16, layers=1, heads=2, ff=32, max_len=64, label_groups={"mode": [6, 7]},
                          bar_positions=True, bar_steps={}, metre_positions=True)
    assert type(m.cond).__name__ == "LabelConditioning"


TINY = tiny_toml("tiny_metre_positions", "melody_transformer",
                 "d_model = 32\nlayers = 1\nheads = 2\nff = 64\nmax_len = 32\ndropout = 0.0\nprime_delimiters = 8\n"
                 "label_dropout = 0.2\nbar_positions = true\nmetre_positions = true", 'condition = ["metre", "mode"]')


def test_tiny_run_with_metre_positions_trains_reloads_and_samples_the_metre(tmp_path):
    from tunesmith.models.melody_transformer import MetrePositions
    from tunesmith.sampling.generate import generate
    from tunesmith.training import load_run, train

    cfg = tmp_path / "c.toml"
    cfg.write_text(textwrap.dedent(TINY))
    train(cfg, tmp_path / "run", device="cpu", max_steps=40, progress=False)
    rows = [r for r in csv.DictReader(open(tmp_path / "run" / "metrics.csv"))
            if r["split"] == "train" and r["metric"] == "loss"]
    assert float(rows[-1]["value"]) < float(rows[0]["value"])
    m, codec, _, _ = load_run(tmp_path / "run")
    assert isinstance(m.cond, MetrePositions) and m.cond.embed.weight.abs().sum() > 0   # trained, reloaded
    metre = [x[len("<metre="):-1] for x in codec.labels if x.startswith("<metre=")][0]
    mels = generate(m, codec, 2, seed=0, condition=f"metre={metre}", guidance=2.0, steps=24)
    assert len(mels) == 2 and all(f"{x.time_signature[0]}/{x.time_signature[1]}" == metre for x in mels)
