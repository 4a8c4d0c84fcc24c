"""Every shipped config trains for two steps and samples (slow: real sizes; `pytest -m slow`)."""
from pathlib import Path

import pytest

from tunesmith.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


def test_every_config_parses():
    assert len(CONFIGS) >= 18
    for c in CONFIGS:
        cfg = load_config(c)
        assert cfg.model["name"] and cfg.data["encoding"], c


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_trains_and_samples(config, tmp_path):
    from tunesmith.sampling.generate import sample_run
    from tunesmith.training import train

    train(config, tmp_path / "run", device="cpu", max_steps=2, progress=False)
    paths = sample_run(tmp_path / "run", tmp_path / "out", num=1, seed=0, steps=None)
    assert paths and all(p.stat().st_size > 0 for p in paths)
