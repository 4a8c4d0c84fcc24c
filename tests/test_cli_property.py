"""Property-based test of the CLI contract (issue 11, item 5), with hypothesis.

Random mutations of config values and of ``tunesmith sample`` / ``tunesmith train`` flags -- valid values,
boundaries, NaN/inf, negatives, absurd sizes, wrong types, unknown keys, an ``--out`` that is a file or an
existing run -- must each end in exit code 0, 1 or 2, with at most one ``error:`` line (exactly one for
exit 1), no traceback, never the catch-all for raw exceptions ("set TUNESMITH_DEBUG=1"), and nothing
previously written damaged (the trained run's files and an unrelated file keep their bytes).

The examples are derandomized (the same ones on every run, so CI is not flaky) and bounded so that the
file takes well under a minute on 2 cores. ``TUNESMITH_PROPERTY_EXAMPLES=500`` explores more, at random.
"""
import hashlib
import json
import math
import os
import shutil
import tempfile
import textwrap
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tunesmith.cli import main
from conftest import TINY_LSTM

EXPLORE = int(os.environ.get("TUNESMITH_PROPERTY_EXAMPLES", "0"))


def _settings(n: int):
    return settings(max_examples=EXPLORE or n, deadline=None, derandomize=not EXPLORE, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def digest(path: Path) -> dict[str, str]:
    """Every file under path (or path itself) -> sha1 of its bytes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path) if p != path else p.name): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in files}


def run_cli(capsys, args) -> tuple[int, str]:
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse: usage errors
        rc = e.code if isinstance(e.code, int) else 2
    return rc, capsys.readouterr().err


def check_contract(rc: int, err: str, args) -> None:
    assert rc in (0, 1, 2), (rc, args, err)
    assert "Traceback" not in err, (args, err)
    assert "TUNESMITH_DEBUG" not in err, (args, err)  # a raw exception reached the catch-all: a bug
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) <= 1, (args, err)
    if rc == 1:
        assert len(errors) == 1 and errors[0].startswith("error: "), (args, err)
    if rc == 2:
        assert len(errors) == 1, (args, err)


# ------------------------------------------------------------------------------------------ strategies
def number_texts():
    finite = st.one_of(st.integers(-10, 10), st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: round(x, 3)))
    return st.one_of(finite.map(str), st.sampled_from(
        ["0", "-0", "nan", "inf", "-inf", "1e12", "-1e12", "1e308", "1e-300", "abc", "", " ", "1,5", "0x10"]))


def int_texts(lo: int, hi: int):
    return st.one_of(st.integers(lo, hi).map(str), st.sampled_from(
        ["0", "-1", "-100", "10000000", "99999999999999999999", "1.5", "x", "", "nan"]))


SAMPLE_FLAGS = {
    "--temperature": number_texts(),
    "--top-k": int_texts(1, 30),
    "--steps": int_texts(1, 40),
    "--num": st.one_of(st.integers(1, 2).map(str), st.sampled_from(["0", "-1", "100000", "x"])),
    "--tempo": st.one_of(st.sampled_from(["4", "1000", "120", "3.99", "1000.5"]), number_texts()),
    "--seed": st.one_of(st.integers(0, 2**31).map(str), st.sampled_from(["-1", str(2**64), "x"])),
    "--primer": st.one_of(st.text(alphabet="0123456789 _r/x-", max_size=16),
                          st.sampled_from(["60 _ 62 _", "r r", "/", "60 60 60", "999", "\u00e9\u266b"])),
    "--format": st.sampled_from(["mid", "abc", "musicxml", "mid,abc", "wav", "", "mid,,abc", "MID", "pdf"]),
    "--condition": st.sampled_from(["metre=3/4", "x", ""]),
    "--noise": number_texts(),
    "--melody": st.sampled_from(["nope.mid", "."]),
}
SAMPLE_SWITCHES = ["--denoise", "--griffin-lim", "--wav"]


@st.composite
def sample_args(draw):
    flags = draw(st.lists(st.sampled_from(sorted(SAMPLE_FLAGS)), max_size=4, unique=True))
    args = []
    for f in flags:
        v = draw(SAMPLE_FLAGS[f])
        args.append(f"{f}={v}")  # "=" keeps values like "-1" from reading as flags
    args += draw(st.lists(st.sampled_from(SAMPLE_SWITCHES), max_size=1, unique=True))
    if not any(a.startswith("--steps") for a in args):
        args.append("--steps=16")  # bounded work per example
    if not any(a.startswith("--num") for a in args):
        args.append("--num=1")
    out = draw(st.sampled_from(["new", "precious", "under_precious", "existing"]))
    return args, out


@pytest.fixture(scope="module")
def protected(tiny_run):
    return {"run": digest(tiny_run)}


@_settings(100)
@given(case=sample_args())
@example(case=(["--seed=18446744073709551616", "--num=1", "--steps=8"], "new"))  # found: a raw torch overflow
def test_sample_flags_keep_the_contract(tiny_run, protected, capsys, case):
    args, out_kind = case
    with tempfile.TemporaryDirectory(prefix="prop-") as d:
        d = Path(d)
        precious = d / "notes.txt"
        precious.write_text("written before")
        (d / "existing").mkdir()
        (d / "existing" / "mine.txt").write_text("mine")
        out = {"new": d / "new", "precious": precious, "under_precious": precious / "o",
               "existing": d / "existing"}[out_kind]
        full = ["sample", tiny_run, *args, "--out", out]
        rc, err = run_cli(capsys, full)
        check_contract(rc, err, full)
        assert precious.read_text() == "written before"
        assert (d / "existing" / "mine.txt").read_text() == "mine"
        if rc == 0:
            assert out.is_dir() and any(out.glob("sample_000.*")), (full, err)
    assert digest(tiny_run) == protected["run"]  # the run that was sampled is untouched


# ------------------------------------------------------------------------------------------ configs
BASE = tomllib.loads(textwrap.dedent(TINY_LSTM))
SECTIONS = ["data", "model", "train", "sample"]
EXTRA_KEYS = {"data": ["dataset", "encoding", "durations", "transpose", "max_pieces"],
              "model": ["name", "layers", "embed_dim", "hidden"],
              "train": ["optimizer", "grad_clip", "lr_decay", "precision", "betas", "n_critic"],
              "sample": ["temperature", "top_k", "steps", "tempo", "num", "primer", "bogus"]}


def values():
    return st.one_of(
        st.integers(-3, 64), st.sampled_from([0, -1, 10**9, 2**62, 10**7]),
        st.floats(allow_nan=True, allow_infinity=True, width=32),
        st.booleans(),
        st.text(alphabet="abcxyz_-./0123456789 ", max_size=8),
        st.sampled_from(["essen-small", "timestep", "melody_lstm", "adam", "bf16", "nowhere/at/all"]),
        st.lists(st.integers(-1, 4), max_size=3),
        st.lists(st.floats(0, 1), min_size=2, max_size=2),
    )


def same_kind(v):
    """A value of the same type as the config's own (most mutations should get past the type checks and
    exercise data loading, the model and the trainer), near or far from it."""
    if isinstance(v, bool):
        return st.booleans()
    if isinstance(v, int):
        return st.one_of(st.integers(-2, max(4, 2 * v)), st.sampled_from([0, 1, v + 1, 10**6]))
    if isinstance(v, float):
        return st.one_of(st.floats(-0.5, max(2.0, 2 * v)), st.sampled_from([0.0, 1.0, math.nan, math.inf]))
    if isinstance(v, str):
        # no big corpus or "." (the whole working tree): each example must stay fast on a fresh machine
        return st.sampled_from([v, v.upper(), v + "x", "", "essen-smal", "/nonexistent", "-"])
    return values()


@st.composite
def config_mutations(draw):
    cfg = json.loads(json.dumps(BASE))
    # "gentle": one key of the tiny config gets a value of its own type, so that many examples get past the
    # checks and exercise data, model and trainer; "hostile": up to three edits of any kind
    gentle = draw(st.booleans())
    for _ in range(1 if gentle else draw(st.integers(1, 3))):
        sec = draw(st.sampled_from(SECTIONS))
        table = cfg.setdefault(sec, {})
        if gentle:
            key = draw(st.sampled_from(sorted(table)))
            table[key] = draw(same_kind(table[key]))
            continue
        op = draw(st.sampled_from(["set"] * 6 + ["delete", "unknown"]))
        keys = sorted(set(table) | set(EXTRA_KEYS[sec]))
        if op == "delete" and table:
            table.pop(draw(st.sampled_from(sorted(table))))
        elif op == "unknown":
            table[draw(st.sampled_from(["lerning_rate", "n_vocabs", "latnt", "x"]))] = draw(values())
        else:
            key = draw(st.sampled_from(keys))
            old = table.get(key)
            table[key] = draw(values() if old is None else st.one_of(same_kind(old), same_kind(old), values()))
    flags = ["--max-steps", draw(st.sampled_from(["1", "2"] if gentle else ["1", "2", "0", "-1", "x"]))]
    flags += draw(st.sampled_from([[], ["--device", "cpu"], ["--device", "cuda"], ["--device", "tpu"],
                                   ["--epochs", "-1"], ["--epochs", "1"]]))
    out = draw(st.sampled_from(["new", "new", "existing_run", "precious"]))
    return cfg, flags, out


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, (int, str)):
        return json.dumps(v)
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


def to_toml(cfg: dict) -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    for sec, table in cfg.items():
        if isinstance(table, dict):
            lines += [f"[{sec}]"] + [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def test_toml_writer_round_trips():
    assert tomllib.loads(to_toml(BASE)) == BASE


def base_with(**sections):
    cfg = json.loads(json.dumps(BASE))
    for sec, kv in sections.items():
        cfg[sec].update(kv)
    return cfg


@_settings(50)
@given(case=config_mutations())
# found by this test: each ended in a raw exception before it was fixed
@example(case=(base_with(data={"encoding": [0.25, 0.25]}), ["--max-steps", "1"], "new"))
@example(case=(base_with(model={"dropout": 2**62}), ["--max-steps", "1"], "new"))
@example(case=(base_with(data={"durations": 2}), ["--max-steps", "1"], "new"))
@example(case=(base_with(data={"seq_len": 0}), ["--max-steps", "1"], "new"))
@example(case=(base_with(model={"hidden": 10**6}), ["--max-steps", "1"], "new"))  # 16 TB of weights
def test_config_mutations_keep_the_contract(tiny_run, capsys, case):
    cfg, flags, out_kind = case
    with tempfile.TemporaryDirectory(prefix="prop-") as d:
        d = Path(d)
        path = d / "mutated.toml"
        path.write_text(to_toml(cfg))
        precious = d / "notes.txt"
        precious.write_text("written before")
        existing = d / "existing_run"
        shutil.copytree(tiny_run / "checkpoint", existing / "checkpoint")
        before = digest(existing)
        out = {"new": d / "new", "existing_run": existing, "precious": precious}[out_kind]
        full = ["train", path, "--out", out, "--quiet", *flags]
        rc, err = run_cli(capsys, full)
        check_contract(rc, err, full)
        assert precious.read_text() == "written before"
        assert digest(existing) == before, full  # no --resume: an existing run is never overwritten
        if rc == 0:
            assert (out / "checkpoint" / "model.safetensors").is_file(), full


def test_betas_that_is_not_a_list(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(to_toml(base_with(train={"betas": 0.5})))
    full = ["train", path, "--out", tmp_path / "o", "--max-steps", "1", "--quiet"]
    rc, err = run_cli(capsys, full)
    check_contract(rc, err, full)
    assert rc == 1 and "betas" in err


# ------------------------------------------------------------------------------------------ render, evaluate
@st.composite
def render_evaluate_args(draw):
    cmd = draw(st.sampled_from(["render", "evaluate"]))
    if cmd == "render":
        src = draw(st.sampled_from(["tune.mid", "empty.mid", "garbage.mid", "missing.mid", "notes.txt"]))
        dst = draw(st.sampled_from(["out.wav", "OUT.WAV", "out.mp3", "out", ".", "notes.txt/x.wav", "sub/deep/o.wav",
                                    "notes.txt"]))
        flags = draw(st.lists(st.sampled_from([["--sample-rate", "0"], ["--sample-rate", "22050"],
                                               ["--sample-rate", "-5"], ["--sample-rate", "x"],
                                               ["--soundfont", "missing.sf2"], ["--soundfont", "notes.txt"]]),
                              max_size=2))
        return [cmd, src, dst] + [x for f in flags for x in f]
    gen = draw(st.sampled_from(["set", "empty_dir", "missing", "notes.txt", "set/tune.mid", "essen-smal"]))
    ref = draw(st.sampled_from(["set", "empty_dir", "essen-small:nope", "notes.txt"]))
    flags = draw(st.sampled_from([[], ["--max-pieces", "0"], ["--max-pieces", "-1"], ["--max-pieces", "1"],
                                  ["--max-pieces", "x"]]))
    out = draw(st.sampled_from(["rep", "notes.txt", "notes.txt/r", "set"]))
    return [cmd, gen, "--reference", ref, "--out", out] + flags


@_settings(40)
@given(args=render_evaluate_args())
def test_render_and_evaluate_flags_keep_the_contract(capsys, args):
    from tunesmith.data.midi import write_midi
    from tunesmith.data.notes import Score

    with tempfile.TemporaryDirectory(prefix="prop-") as d:
        d = Path(d)
        (d / "set").mkdir()
        (d / "empty_dir").mkdir()
        tune = Score.from_notes([(60 + i % 5, i, 1) for i in range(8)])
        write_midi(tune, d / "set" / "tune.mid")
        write_midi(tune, d / "tune.mid")
        write_midi(Score(), d / "empty.mid")
        (d / "garbage.mid").write_bytes(b"MThd garbage")
        (d / "notes.txt").write_text("written before")
        before = digest(d / "set")
        cwd = os.getcwd()
        os.chdir(d)
        try:
            rc, err = run_cli(capsys, args)
        finally:
            os.chdir(cwd)
        check_contract(rc, err, args)
        assert (d / "notes.txt").read_text() == "written before"
        out = args[args.index("--out") + 1] if "--out" in args else None
        if out != "set":  # (a report written into the set's own folder adds files there, by request)
            assert digest(d / "set") == before, args
