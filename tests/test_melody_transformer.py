"""The relative-attention Transformer: skewing, the key/value cache, windowed scoring, training, sampling."""
import math
import textwrap

import pytest
import torch

from conftest import tiny_tf_toml
from tunesmith.models.melody_transformer import MelodyTransformer, skew


def tiny(max_len=16, layers=2, **kw):
    torch.manual_seed(0)
    return MelodyTransformer(12, d_model=32, layers=layers, heads=4, ff=64, max_len=max_len, dropout=0.0,
                             prime_delimiters=4, **kw).eval()


def test_skew_places_each_relative_distance():
    T = 6
    qe = torch.randn(2, 3, T, T)
    s = skew(qe)
    for i in range(T):
        for j in range(i + 1):  # column T-1-(i-j) holds distance i-j
            assert torch.equal(s[:, :, i, j], qe[:, :, i, T - 1 - (i - j)])


def test_relative_attention_matches_the_direct_formula():
    """softmax((q k^T + q r_(i-j)) / sqrt(d)) v, written out loop by loop."""
    m = tiny()
    a = m.blocks[0].attn
    x = torch.randn(1, 7, 32)
    y, _ = a(x)
    q, k, v = a._split(x)
    T = 7
    logits = torch.full((1, a.h, T, T), float("-inf"))
    for i in range(T):
        for j in range(i + 1):
            r = a.rel[:, a.max_len - 1 - (i - j)]                        # (H, dh)
            logits[0, :, i, j] = ((q[0, :, i] * (k[0, :, j] + r)).sum(-1)) / math.sqrt(a.dh)
    ref = torch.softmax(logits, -1) @ v
    ref = a.out(ref.transpose(1, 2).reshape(1, T, 32))
    assert torch.allclose(y, ref, atol=1e-5)


def test_kv_cache_steps_equal_the_full_forward():
    m = tiny()
    ids = torch.randint(0, 12, (3, 14))
    full = m.logits(ids)
    lg, cache = m.logits(ids[:, :4], return_cache=True)
    outs = [lg[:, -1]]
    for t in range(4, 14):
        x = m.embed(ids[:, t])[:, None]
        for i, b in enumerate(m.blocks):
            x, cache[i] = b.step(x, cache[i])
        outs.append(m.head(m.ln(x))[:, 0])
    assert torch.allclose(torch.stack(outs, 1), full[:, 3:], atol=1e-5)


def test_sliding_cache_of_one_layer_equals_rerunning_the_last_window():
    """Positions are relative, so past max_len the cache drops the oldest keys; with one layer (keys depend on
    their own symbol only) that is exactly the model run on the last max_len symbols."""
    m = tiny(max_len=8, layers=1)
    ids = torch.randint(0, 12, (2, 20))
    lg, cache = m.logits(ids[:, :8], return_cache=True)
    for t in range(8, 20):
        x = m.embed(ids[:, t])[:, None]
        x, cache[0] = m.blocks[0].step(x, cache[0])
        step_logits = m.head(m.ln(x))[:, 0]
        window = m.logits(ids[:, t - 7:t + 1])[:, -1]
        assert torch.allclose(step_logits, window, atol=1e-5)


def test_log_probs_over_long_sequences_use_overlapping_windows():
    m = tiny(max_len=8)
    ids = torch.randint(0, 12, (11,))
    lp = m.log_probs(ids)
    assert torch.allclose(lp[:8], torch.log_softmax(m.logits(ids[None, :8])[0], -1), atol=1e-5)
    # positions 8..10 are scored in the window [3, 11): at least half a window of context
    assert torch.allclose(lp[8:], torch.log_softmax(m.logits(ids[None, 3:11])[0], -1)[5:], atol=1e-5)
    short = ids[:5]
    assert torch.allclose(m.log_probs(short), torch.log_softmax(m.logits(short[None])[0], -1), atol=1e-5)


class _Codec:
    seq_len = 16
    vocab = ["/", "_", "r"] + [str(p) for p in range(60, 69)]

    def parse_primer(self, text):
        return [self.vocab.index(s) for s in text.split()]


def test_greedy_sampling_with_the_cache_equals_rerunning_the_context():
    m = tiny(max_len=32)
    with torch.no_grad():
        m.head.bias.copy_(torch.linspace(0, 1, 12))   # make '/' unlikely so rows run long
        m.head.bias[0] = -10
    codec = _Codec()
    a = m.sample_ids(codec, 3, primer="60 _ 62", top_k=1, steps=24)
    b = m.sample_ids_window(codec, 3, primer="60 _ 62", top_k=1, steps=24)
    assert a == b
    assert all(r[:3] == codec.parse_primer("60 _ 62") for r in a)
    long = m.sample_ids(codec, 2, primer="60 _ 62", top_k=1, steps=80)  # past max_len: the cache slides
    assert all(len(r) == 3 + 80 for r in long)
    assert [r[:27] for r in long] == [r[:27] for r in a[:2]]
    g1 = m.sample_ids(codec, 2, temperature=1.0, steps=20, generator=torch.Generator().manual_seed(3))
    g2 = m.sample_ids(codec, 2, temperature=1.0, steps=20, generator=torch.Generator().manual_seed(3))
    assert g1 == g2


def test_a_sample_never_ends_before_its_first_symbol(tiny_run):
    """'/' (the end of a song) cannot be the first generated symbol: with its logit far above the others, every
    sample of the Transformer and of the LSTM still holds one symbol (then ends). Before the fix: empty pieces."""
    from tunesmith.training import load_run

    m = tiny(max_len=32)
    lstm, lstm_codec, _, _ = load_run(tiny_run)
    with torch.no_grad():
        m.head.bias[0] = 50.0
        lstm.head.bias[lstm.delimiter_id] = 50.0
    for model, rows in ((m, m.sample_ids(_Codec(), 4, steps=6, generator=torch.Generator().manual_seed(0))),
                        (m, m.sample_ids_window(_Codec(), 4, steps=6, generator=torch.Generator().manual_seed(0))),
                        (lstm, lstm.sample_ids(lstm_codec, 4, steps=6, generator=torch.Generator().manual_seed(0))),
                        (lstm, lstm.sample_ids_window(lstm_codec, 4, steps=6,
                                                      generator=torch.Generator().manual_seed(0)))):
        assert all(len(r) == 1 and model.delimiter_id not in r for r in rows), rows
    assert all(len(r) == 3 for r in m.sample_ids(_Codec(), 2, primer="60 _", top_k=1, steps=6))


def test_bad_settings_are_one_line_errors():
    from tunesmith.errors import TunesmithError

    with pytest.raises(TunesmithError, match="multiple of model.heads"):
        MelodyTransformer(12, d_model=30, heads=4)
    with pytest.raises(TunesmithError, match="context"):
        tiny(max_len=8).logits(torch.zeros(1, 9, dtype=torch.long))


TINY_TF = tiny_tf_toml(40, "prime_delimiters = 4")


def test_training_lowers_the_loss_and_samples_decode(tmp_path):
    from tunesmith.sampling.generate import generate
    from tunesmith.training import load_run, train

    cfg = tmp_path / "tiny_tf.toml"
    cfg.write_text(textwrap.dedent(TINY_TF))
    s = train(cfg, tmp_path / "run", device="cpu", max_steps=40, progress=False)
    from tunesmith.training.logger import read_metrics

    series = read_metrics(tmp_path / "run")[("train", "loss")]
    assert series[-1][1] < series[0][1] - 0.5
    model, codec, _, _ = load_run(tmp_path / "run")
    mel = generate(model, codec, 2, seed=0, primer="67 _ 67 _", temperature=0.9, top_k=5, steps=40)
    assert len(mel) == 2 and all(len(m) >= 2 for m in mel)
    assert mel[0].pitch[0] == 67 and s["val"]["loss"] < math.log(len(codec.vocab))
