"""Declared contracts between the stages (issue 11): the web app reads each model's declared page kind and
controls, never its attributes or signatures; every family's declaration is consistent with what it does."""
import inspect
from pathlib import Path

import pytest
import torch

from tunesmith.data.notes import Score
from tunesmith.models import MODELS, _load_models, build_model
from tunesmith.models.base import PAGE_KINDS, TunesmithModel
from tunesmith.models.controls import controls

_load_models()
FAMILIES = sorted(MODELS.items())
AUDIO_ONLY_CONTROLS = {"denoise", "griffin_lim"}     # meaningful only for a model that makes sound


@pytest.mark.parametrize("name,cls", FAMILIES, ids=[n for n, _ in FAMILIES])
def test_each_family_declares_a_page_kind_that_fits_its_controls(name, cls):
    kind = cls.page_kind
    assert kind in PAGE_KINDS, f"{name}: page_kind {kind!r}"
    names = {c.name for c in controls(cls)}
    if kind == "lstm":
        assert {"primer", "temperature", "steps"} <= names, names
    if kind == "vae":
        assert "sliders" in names
        for method in ("slider_z", "decode", "encode_score"):
            assert callable(getattr(cls, method, None)), method
    if kind == "chorale":
        assert "melody" in names and callable(getattr(cls, "harmonize", None))
    if names & AUDIO_ONLY_CONTROLS:
        assert kind == "audio", f"{name} takes {names & AUDIO_ONLY_CONTROLS} but declares page_kind {kind!r}"


def test_the_page_no_longer_offers_a_primer_to_models_without_one():
    """PatchGAN takes a temperature but no primer: the old signature sniffing gave it the primer panel."""
    assert MODELS["patchgan"].page_kind == "generic"
    assert MODELS["wavenet"].page_kind == "audio" and MODELS["spec_bilstm"].page_kind == "audio"
    assert MODELS["melody_lstm"].page_kind == "lstm" and MODELS["melody_transformer"].page_kind == "lstm"


def test_serve_reads_the_declaration_not_the_model():
    from tunesmith.serve.app import _kind

    class Sniffable(TunesmithModel):   # has everything the old _kind looked for, declares nothing
        n_sliders = 3

        def slider_z(self, values):
            raise AssertionError

        def harmonize(self):
            raise AssertionError

        def generate(self, codec, n, generator=None, primer=None, temperature=1.0, sliders=None):
            raise AssertionError

    assert _kind(Sniffable())[0] == "generic"
    Sniffable.page_kind = "vae"
    assert _kind(Sniffable()) == ("vae", {"sliders": 3, "slider_range": 3.0})
    Sniffable.page_kind = "piano"
    from tunesmith.errors import TunesmithError

    with pytest.raises(TunesmithError, match="page_kind is 'piano'"):
        _kind(Sniffable())
    src = Path(inspect.getsourcefile(_kind)).read_text()
    assert "signature(" not in src and "hasattr(model" not in src and "hasattr(e.model" not in src


def test_audio_models_are_refused_before_any_work():
    from starlette.testclient import TestClient

    from tunesmith.serve.app import Entry, create_app

    class Synth(TunesmithModel):
        page_kind = "audio"

        def generate(self, codec, n, generator=None, primer=None):
            raise AssertionError("generate must not run")

    e = Entry("synth", "-", Synth(), None, None, {}, "audio", {"family": "x", "labels": [], "tempo": 120.0})
    with TestClient(create_app(entries={"synth": e})) as c:
        r = c.post("/api/generate", json={"model": "synth", "seed": 1})
        assert r.status_code == 422 and "makes audio" in r.json()["detail"]
        r = c.post("/api/generate", json={"model": "synth", "primer": "60 _"})
        assert r.status_code == 422


def test_generic_model_gets_tempo_only_when_it_declares_it():
    """A generic model is called with exactly the declared controls the page sends (tempo), nothing else."""
    from starlette.testclient import TestClient

    from tunesmith.serve.app import Entry, create_app

    seen = []

    class WithTempo(TunesmithModel):
        def generate(self, codec, n, generator=None, tempo: float = 120.0):
            seen.append(tempo)
            return [Score.from_notes([(60, 0.0, 1.0)], tempo=tempo)]

    class NoTempo(TunesmithModel):
        def generate(self, codec, n, generator=None):
            seen.append(None)
            return [Score.from_notes([(62, 0.0, 1.0)])]

    opts = {"family": "x", "labels": [], "tempo": 120.0}
    entries = {"a": Entry("a", "-", WithTempo(), None, None, {}, "generic", dict(opts)),
               "b": Entry("b", "-", NoTempo(), None, None, {}, "generic", dict(opts))}
    with TestClient(create_app(entries=entries)) as c:
        assert c.post("/api/generate", json={"model": "a", "tempo": 90}).status_code == 200
        assert c.post("/api/generate", json={"model": "b", "tempo": 90}).status_code == 200
    assert seen == [90.0, None]


def test_loaded_patchgan_run_is_a_plain_sampler(tmp_path):
    """Through the run directory: a PatchGAN run is served as "generic" with its declared controls listed."""
    from starlette.testclient import TestClient

    from tunesmith.config import Config
    from tunesmith.data.tokens import Tokens88Codec
    from tunesmith.serve.app import create_app
    from tunesmith.training.checkpoint import write_checkpoint

    torch.manual_seed(0)
    codec = Tokens88Codec(seq_len=16)
    model = build_model("patchgan", codec.model_info(), embed_dim=4, hidden=4, disc_channels=[4, 4])
    cfg = Config.from_dict({"data": {"encoding": "tokens88", "seq_len": 16},
                            "model": {"name": "patchgan", "embed_dim": 4, "hidden": 4, "disc_channels": [4, 4]}})
    write_checkpoint(tmp_path / "pg", model, cfg, codec, {}, {"step": 1})
    with TestClient(create_app([tmp_path / "pg"])) as c:
        (m,) = c.get("/api/models").json()
        assert m["kind"] == "generic" and "primer" not in m
        assert [x["name"] for x in m["controls"]] == [x.name for x in controls(model)]
        assert c.post("/api/generate", json={"model": m["name"], "primer": "60 _"}).status_code == 422
        r = c.post("/api/generate", json={"model": m["name"], "seed": 3})
        assert r.status_code == 200 and r.json()["kind"] == "generic"


def test_essen_preparation_is_its_own_module_and_the_encodings_build_on_it():
    """data/essen.py knows no encoding; timestep.encode_corpus = essen.prepare_melodies + encode_score."""
    import ast

    from tunesmith.data import essen, timestep

    tree = ast.parse(Path(essen.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"timestep", "tokens", "tuples", "gan_data", "melody_phrases", "base"}, imported
    assert timestep.prepared_songs is essen.prepared_songs and timestep.SEED_DURATIONS is essen.SEED_DURATIONS
    g_sharp = Score.from_notes([(68, 0.0, 1.0), (72, 1.0, 1.0), (75, 2.0, 2.0)])   # A-flat major: -> C major
    dotted16 = Score.from_notes([(60, 0.0, 0.375)])
    off_grid = Score.from_notes([(60, 0.1, 1.0)])
    kept, reasons = essen.prepare_melodies([g_sharp, dotted16, off_grid], 0.25, essen.SEED_DURATIONS, True, False)
    assert len(kept) == 1 and reasons == {"note duration 0.375": 1, "onsets off the 0.25-beat grid": 1}
    assert kept[0].pitch.tolist() == [60, 64, 67]
    pairs, reasons2 = timestep.encode_corpus([g_sharp, dotted16], 0.25, essen.SEED_DURATIONS, True, False)
    assert reasons2 == {"note duration 0.375": 1}
    assert pairs[0][0].pitch.tolist() == [60, 64, 67] and pairs[0][1] == ["60", "_", "_", "_", "64", "_", "_", "_",
                                                                          "67", "_", "_", "_", "_", "_", "_", "_"]
    from tunesmith.errors import TunesmithError

    with pytest.raises(TunesmithError, match="no song passed the duration filter"):
        essen.prepare_melodies([dotted16], 0.25, essen.SEED_DURATIONS, True, False)
