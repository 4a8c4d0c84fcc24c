"""Seed 004's WGAN-GP: calibrated decoding turns outputs that all stay below 0.5 into four sounding voices."""
import numpy as np
import pytest
import torch

from tunesmith.data.chorale_roll import ChoraleRollCodec, calibrated_threshold
from tunesmith.errors import TunesmithError
from tunesmith.models.chorale_wgan import ChoraleWGAN


def test_calibrated_threshold_is_the_quantile_of_each_cells_peak():
    x = torch.zeros(1, 1, 4, 128)
    x[0, 0, :, 60] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert calibrated_threshold(x, sounding=0.5) == pytest.approx(0.25)
    assert calibrated_threshold(x, sounding=1.0) == pytest.approx(0.1)


def test_untrained_generator_is_silent_at_half_but_sounds_when_calibrated():
    torch.manual_seed(0)
    model = ChoraleWGAN(gen_widths=[8, 8, 8], critic_widths=[8, 8, 8, 8], latent_channels=16).eval()
    codec = ChoraleRollCodec()
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    silent = model.generate(codec, 4, generator=g(), threshold=0.5)
    assert all(len(s) == 0 for s in silent)  # the seed's decoding: sigmoid(-4 + ...) < 0.5 everywhere
    pieces = model.generate(codec, 4, generator=g())
    for s in pieces:
        assert len(s) > 0 and sorted(set(s.track.tolist())) == [0, 1, 2, 3]
    roll = np.stack([codec.encode(s)[:, :32] if codec.encode(s).shape[1] >= 32 else
                     np.pad(codec.encode(s), ((0, 0), (0, 32 - codec.encode(s).shape[1]), (0, 0))) for s in pieces])
    sounding = roll.any(-1).mean()
    assert 0.9 < sounding <= 1.0
    assert (roll.sum(-1) <= 1).all()  # one note per voice and step
    with pytest.raises(TunesmithError, match="threshold"):
        model.generate(codec, 1, generator=g(), threshold=2.0)
