"""The chunked sampler behind CUDA-graph sampling (issue 10), run eagerly on CPU against the token loop."""
import pytest
import torch

from tunesmith.models import build_model


@pytest.mark.parametrize("top_k", [None, 3])
def test_chunked_sampler_matches_the_token_loop(top_k):
    torch.manual_seed(0)
    model = build_model("melody_lstm", {"vocab_size": 9, "delimiter_id": 0, "target": "all"}, hidden=16,
                        dropout=0.0, layers=2).eval()
    n, steps = 5, 70                                    # not a multiple of the chunk: the tail is cut
    x = torch.randint(1, 9, (n, 6))
    with torch.no_grad():
        logits, (h, c) = model.logits(x)
        h, c = list(h.unbind(0)), list(c.unbind(0))
        step = model._stepper()
        g = torch.Generator().manual_seed(3)
        last, hh, cc = logits[:, -1], h, c
        ref = torch.empty(n, steps, dtype=torch.long)
        for t in range(steps):
            # the chunked sampler draws each chunk's noise in one call; draw the same numbers here
            if t % 16 == 0:
                noise = torch.empty(16, n, 9).exponential_(generator=g)
            xx = last.float() / 0.8
            if top_k:
                kth = torch.topk(xx, top_k, dim=-1).values[:, -1:]
                xx = xx.masked_fill(xx < kth, float("-inf"))
            nxt = (xx - noise[t % 16].log()).argmax(-1)
            ref[:, t] = nxt
            last, hh, cc = step(nxt, hh, cc)
        out = model._sample_chunked(step, logits[:, -1], h, c, n, steps, 0.8, top_k,
                                    torch.Generator().manual_seed(3), graph=False, chunk=16)
    assert out.shape == (n, steps)
    assert torch.equal(out, ref)
    if top_k:   # only the top-k symbols of each step can be drawn: checked through the distinct values
        assert out.unique().numel() <= 9
