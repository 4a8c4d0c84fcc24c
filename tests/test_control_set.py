"""`tunesmith sample RUN --set NAME=VALUE` reaches any control a model declares (models/controls.py), typed by
that declaration: a new family's new control needs no change to cli.py."""
import pytest
import torch

from tunesmith.errors import TunesmithError
from tunesmith.models.controls import parse_control_values
from tunesmith.sampling.generate import sample_run
from tunesmith.training.checkpoint import load_run


class NewFamily:
    """A family with a control no CLI flag knows about."""

    def generate(self, codec, n, *, wobble: float = 0.5, voices: int = 2, legato: bool = False, style: str = "a"):
        raise NotImplementedError


def test_values_are_typed_by_the_declaration():
    got = parse_control_values(NewFamily(), ["wobble=0.25", "voices=3", "legato=on", "style=b"])
    assert got == {"wobble": 0.25, "voices": 3, "legato": True, "style": "b"}
    assert type(got["voices"]) is int and type(got["wobble"]) is float


def test_lists_and_dicts_of_numbers_are_comma_separated():
    """The VAEs' ``sliders: list[float]`` and the melody VAE's ``attributes: dict[str, float]`` (a string reached
    the model before: "too many dimensions 'str'")."""
    from tunesmith.models.autoencoder import RollAutoencoder
    from tunesmith.models.melody_vae import MelodyVAE

    assert parse_control_values(RollAutoencoder, ["sliders=1.5,0,-2"]) == {"sliders": [1.5, 0.0, -2.0]}
    got = parse_control_values(MelodyVAE, ["sliders=1", "attributes=pitch_range=2, rests=-1.5"])
    assert got == {"sliders": [1.0], "attributes": {"pitch_range": 2.0, "rests": -1.5}}
    for pair, hint in (("sliders=1,,2", "numbers separated by commas"), ("attributes=rests", "NAME=NUMBER pairs"),
                       ("attributes==1", "NAME=NUMBER pairs"), ("attributes=rests=x", "NAME=NUMBER pairs")):
        with pytest.raises(TunesmithError, match=hint):
            parse_control_values(MelodyVAE, [pair])


@pytest.mark.parametrize("pair,msg", [("tremolo=1", "has no control 'tremolo' (it takes: legato, style, voices, "
                                                    "wobble"),
                                      ("voices=two", "expected a value of type int"),
                                      ("legato=maybe", "expected a value of type bool"),
                                      ("wobble", "takes NAME=VALUE")])
def test_bad_pairs_are_one_line_errors(pair, msg):
    with pytest.raises(TunesmithError, match=msg.replace("(", r"\(")):
        parse_control_values(NewFamily(), [pair])


def test_set_reaches_the_model_like_its_flag(tiny_run, tmp_path):
    a = sample_run(tiny_run, tmp_path / "a", num=2, seed=3, temperature=0.5, steps=24)
    b = sample_run(tiny_run, tmp_path / "b", num=2, seed=3, set=["temperature=0.5", "steps=24"])
    c = sample_run(tiny_run, tmp_path / "c", num=2, seed=3, set=["temperature=3.0", "steps=24"])
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]
    with pytest.raises(TunesmithError, match="given twice"):
        sample_run(tiny_run, tmp_path / "d", num=1, temperature=0.5, set=["temperature=0.7"])
    with pytest.raises(TunesmithError, match="temperature must be > 0"):
        sample_run(tiny_run, tmp_path / "e", num=1, set=["temperature=-1"])
