"""``nsynth-small``: an NSynth-layout set rendered offline with FluidSynth, split by instrument.

``tunesmith datasets build nsynth-small`` renders, with the General MIDI soundfont TimGM6mb (Debian's
``timgm6mb-soundfont``, the project's default GM soundfont), 5 GM programs for each of the 11 NSynth
families (:data:`PROGRAMS`), every semitone over two octaves of a per-family range (25 pitches), at 3
velocities: 55 instruments x 25 x 3 = 4,125 notes. Each note is held 3 s and cut to a 4-s, 16-kHz mono
clip (the release sounds in the last second), without FluidSynth's reverb and chorus, peak-normalised to
0.9 like nsynth-mini. The drawbar organs (GM 16-18), whose samples sound an octave below the key, are
played an octave up (:data:`TRANSPOSE`) so that ``pitch`` is always the sounding pitch (checked with YIN:
every 3rd pitch of every instrument within 0.5 semitone). The folder has NSynth's layout (``examples.json`` + ``audio/NOTE_STR.wav``); each
example also says its ``split``: per family 3 programs are ``train``, 1 ``valid`` and 1 ``test``, so
``nsynth-small:val`` and ``nsynth-small:test`` are notes of instruments no model trained on.

An instrument is a (program, soundfont) pair: ``instrument_str`` is ``FAMILY_SOURCE_NNN`` with NNN the GM
program (0-based) and ``soundfont`` names the file. Rendering is deterministic (same bytes every build:
FluidSynth without reverb/chorus is; tested) and takes about half a minute on one core; each instrument
is one FluidSynth call (one note every 5 s) cut into clips.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import TunesmithError

VERSION = 2
SOUNDFONT = "TimGM6mb.sf2"
SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/soundfonts")
SAMPLE_RATE, CLIP_SECONDS, NOTE_SECONDS, SLOT_SECONDS = 16000, 4.0, 3.0, 5.0
VELOCITIES = (50, 90, 127)
PITCHES_PER_INSTRUMENT = 25        # every semitone over two octaves
PEAK = 0.9

# family -> (source, lowest MIDI pitch, {split: [GM programs, 0-based]}); every range holds MIDI 60
PROGRAMS: dict[str, tuple[str, int, dict[str, list[int]]]] = {
    "bass": ("electronic", 36, {"train": [32, 33, 38], "valid": [34], "test": [35]}),
    # acoustic, finger, synth bass 1 | pick | fretless
    "brass": ("acoustic", 48, {"train": [56, 57, 61], "valid": [60], "test": [59]}),
    # trumpet, trombone, brass section | french horn | muted trumpet
    "flute": ("acoustic", 57, {"train": [72, 73, 75], "valid": [74], "test": [79]}),
    # piccolo, flute, pan flute | recorder | ocarina
    "guitar": ("acoustic", 48, {"train": [24, 25, 27], "valid": [26], "test": [28]}),
    # nylon, steel, clean electric | jazz | muted
    "keyboard": ("acoustic", 48, {"train": [0, 2, 4], "valid": [1], "test": [5]}),
    # grand, electric grand, e-piano 1 | bright grand | e-piano 2
    "mallet": ("acoustic", 57, {"train": [8, 12, 13], "valid": [11], "test": [10]}),
    # celesta, marimba, xylophone | vibraphone | music box
    "organ": ("electronic", 48, {"train": [16, 17, 20], "valid": [18], "test": [21]}),
    # drawbar, percussive, reed organ | rock | accordion (GM's organ group is programs 16-23)
    "reed": ("acoustic", 48, {"train": [65, 66, 68], "valid": [71], "test": [64]}),
    # alto sax, tenor sax, oboe | clarinet | soprano sax
    "string": ("acoustic", 48, {"train": [40, 42, 48], "valid": [41], "test": [49]}),
    # violin, cello, string ensemble 1 | viola | string ensemble 2
    "synth_lead": ("synthetic", 48, {"train": [80, 81, 84], "valid": [82], "test": [83]}),
    # square, saw, charang | calliope | chiff
    "vocal": ("synthetic", 48, {"train": [52, 54, 91], "valid": [53], "test": [85]}),
    # choir aahs, synth voice, pad 4 (choir) | voice oohs | lead 6 (voice)
}
#: programs whose TimGM6mb samples sound an octave below the MIDI key (a 16-foot drawbar): their notes are
#: played this many semitones higher, so that every note's ``pitch`` is the pitch one hears (and that a
#: pitch tracker finds), which is what a model asked for "organ at 60" must learn
TRANSPOSE = {16: 12, 17: 12, 18: 12}
FAMILY_IDS = {f: i for i, f in enumerate(["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed",
                                          "string", "synth_lead", "vocal"])}
SOURCE_IDS = {"acoustic": 0, "electronic": 1, "synthetic": 2}


def instruments() -> list[dict]:
    """One row per instrument, in build order: family, source, program, split, pitches, instrument_str."""
    rows = []
    for family, (source, low, splits) in PROGRAMS.items():
        for split, programs in splits.items():
            for program in programs:
                rows.append({"family": family, "source": source, "program": program, "split": split,
                             "pitches": list(range(low, low + PITCHES_PER_INSTRUMENT)),
                             "instrument_str": f"{family}_{source}_{program:03d}"})
    return sorted(rows, key=lambda r: (FAMILY_IDS[r["family"]], r["program"]))


def expected_notes() -> int:
    return len(instruments()) * PITCHES_PER_INSTRUMENT * len(VELOCITIES)


def find_tools() -> tuple[str, str]:
    """(fluidsynth executable, soundfont path), or a one-line error saying what to install."""
    exe = shutil.which("fluidsynth")
    sf2 = next((str(Path(d) / SOUNDFONT) for d in SOUNDFONT_DIRS if (Path(d) / SOUNDFONT).is_file()), None)
    if not exe or not sf2:
        raise TunesmithError("building nsynth-small needs FluidSynth and the TimGM6mb General MIDI soundfont: "
                             "apt-get install -y --no-install-recommends fluidsynth timgm6mb-soundfont")
    return exe, sf2


def render_slots(slots: list[tuple[int, int]], program: int, exe: str, sf2: str, work: Path, stem: str,
                 transpose: int = 0, fluid_args: tuple[str, ...] = ("-R", "0", "-C", "0")) -> np.ndarray:
    """One GM program playing each (pitch, velocity) of ``slots`` for NOTE_SECONDS, one every SLOT_SECONDS, rendered
    by FluidSynth at SAMPLE_RATE; returns one mono float32 signal (cut by :func:`slot_clip`). nsynth-mini's builder
    (data/builders.py) renders its families with this too, without reverb/chorus flags and transposition."""
    import soundfile as sf

    from .midi import write_midi
    from .notes import Score

    notes = [(p + transpose, k * SLOT_SECONDS, NOTE_SECONDS, v) for k, (p, v) in enumerate(slots)]
    score = Score.from_notes(notes, tempo=60.0, programs={0: program}, end=len(slots) * SLOT_SECONDS)
    mid, wav = work / f"{stem}.mid", work / f"{stem}.wav"
    write_midi(score, mid, tempo=60.0)  # one beat = one second
    r = subprocess.run([exe, "-ni", "-q", *fluid_args, "-g", "0.8", "-r", str(SAMPLE_RATE), "-F", str(wav),
                        sf2, str(mid)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not wav.exists():
        raise TunesmithError(f"fluidsynth failed rendering {stem}: {(r.stderr or r.stdout).strip()[:120]}")
    x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    mid.unlink()
    wav.unlink()
    if sr != SAMPLE_RATE:
        raise TunesmithError(f"fluidsynth wrote {sr} Hz instead of {SAMPLE_RATE}")
    return x.mean(axis=1)


def slot_clip(x: np.ndarray, k: int) -> np.ndarray:
    """The CLIP_SECONDS clip of slot ``k`` of a :func:`render_slots` signal, zero-padded at the end (not normalised)."""
    a = int(round(k * SLOT_SECONDS * SAMPLE_RATE))
    seg = np.zeros(int(CLIP_SECONDS * SAMPLE_RATE), np.float32)
    part = x[a:a + len(seg)]
    seg[:len(part)] = part
    return seg


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the FluidSynth calls)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def build(d: Path, verbose: bool = True) -> Path:
    """Render nsynth-small into ``d`` (written to a temporary folder, then renamed into place)."""
    import soundfile as sf

    exe, sf2 = find_tools()
    t0, cpu0 = time.time(), _cpu()
    tmp = d.with_name(f".{d.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "audio").mkdir(parents=True)
    examples: dict[str, dict] = {}
    insts = instruments()
    silent = []
    for k, inst in enumerate(insts):
        slots = [(p, v) for p in inst["pitches"] for v in VELOCITIES]
        x = render_slots(slots, inst["program"], exe, sf2, tmp, inst["instrument_str"],
                         transpose=TRANSPOSE.get(inst["program"], 0))
        for j, (p, v) in enumerate(slots):
            seg = slot_clip(x, j)
            peak = float(np.abs(seg).max())
            if peak < 1e-4:  # the soundfont has nothing there: leave the note out rather than train on silence
                silent.append(f"{inst['instrument_str']}-{p:03d}-{v:03d}")
                continue
            seg = seg / peak * PEAK
            name = f"{inst['instrument_str']}-{p:03d}-{v:03d}"
            sf.write(str(tmp / "audio" / f"{name}.wav"), seg, SAMPLE_RATE, subtype="PCM_16")
            examples[name] = {
                "note": len(examples), "note_str": name, "instrument": inst["program"],
                "instrument_str": inst["instrument_str"], "pitch": int(p), "velocity": int(v),
                "sample_rate": SAMPLE_RATE, "instrument_family": FAMILY_IDS[inst["family"]],
                "instrument_family_str": inst["family"], "instrument_source": SOURCE_IDS[inst["source"]],
                "instrument_source_str": inst["source"], "qualities": [0] * 10, "qualities_str": [],
                "gm_program": inst["program"], "soundfont": Path(sf2).name, "split": inst["split"],
            }
        if verbose:
            print(f"\rnsynth-small: rendered {k + 1}/{len(insts)} instruments ({len(examples)} notes, "
                  f"{time.time() - t0:.0f} s) {inst['instrument_str']:<24}", end="", file=sys.stderr, flush=True)
    if verbose:
        print(file=sys.stderr)
    text = json.dumps(examples, indent=1, sort_keys=True)
    (tmp / "examples.json").write_text(text)
    counts = {s: sum(e["split"] == s for e in examples.values()) for s in ("train", "valid", "test")}
    meta = {"version": VERSION, "soundfont": sf2, "clips": len(examples), "instruments": len(insts),
            "splits": counts, "silent_left_out": silent, "hash": hashlib.sha256(text.encode()).hexdigest()[:16],
            "seconds": round(time.time() - t0, 2), "cpu_seconds": round(_cpu() - cpu0, 2)}
    (tmp / "build.json").write_text(json.dumps(meta, indent=1))
    from .builders import replace_dir

    replace_dir(tmp, d)
    if verbose:
        print(f"built nsynth-small: {len(examples)} notes of {len(insts)} instruments "
              f"(train {counts['train']}, valid {counts['valid']}, test {counts['test']}) in {d} "
              f"({time.time() - t0:.1f} s)", file=sys.stderr)
    return d


def dataset_hash(d: Path) -> str:
    """The built set's content hash (of its examples.json), for caches derived from it."""
    try:
        return str(json.loads((Path(d) / "build.json").read_text())["hash"])
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return hashlib.sha256((Path(d) / "examples.json").read_bytes()).hexdigest()[:16]
