#!/usr/bin/env bash
# A small copy of the data cache for a device call (whose working tree may carry 64 MiB in all): the parsed corpora
# and a few clips of each audio dataset (enough for every config's batch; `pytest -m gpu` trains 5 steps), in
# .gpu-lite/ (git-ignored). Run after ../shared/gpu/prepare.sh, which fills .gpu-cache/ with the full cache.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
grep -qxF "/.gpu-lite/" .git/info/exclude || echo "/.gpu-lite/" >> .git/info/exclude
grep -qxF "/.site/" .git/info/exclude || echo "/.site/" >> .git/info/exclude
rm -rf .gpu-lite && mkdir -p .gpu-lite/datasets
cp .gpu-cache/corpus-*-v2.pkl .gpu-lite/
python3 - <<'PY'
import collections, json, shutil
from pathlib import Path
src, dst = Path(".gpu-cache/datasets"), Path(".gpu-lite/datasets")
# clips kept per (split, family): nsynth-small by split, nsynth-mini (one split) more of the families configs filter
per = {"nsynth-small": lambda split, fam: {"train": 3}.get(split, 1),
       "nsynth-mini": lambda split, fam: {"guitar": 24, "organ": 20}.get(fam, 2)}
for name, n in per.items():
    d = json.loads((src / name / "examples.json").read_text())
    count, inst, keep = collections.Counter(), {}, {}
    for k, e in d.items():
        key = (e.get("split"), e["instrument_family_str"])
        if name == "nsynth-small" and inst.setdefault(key, e["instrument_str"]) != e["instrument_str"]:
            continue                                     # one instrument per split and family
        if count[key] < n(*key):
            count[key] += 1
            keep[k] = e
    (dst / name / "audio").mkdir(parents=True)
    for k in keep:
        shutil.copy(src / name / "audio" / f"{k}.wav", dst / name / "audio" / f"{k}.wav")
    (dst / name / "examples.json").write_text(json.dumps(keep, indent=1))
    b = json.loads((src / name / "build.json").read_text())
    b.update(clips=len(keep), trimmed_for_device_call=True)
    (dst / name / "build.json").write_text(json.dumps(b, indent=1))
    print(name, len(keep), "clips")
PY
rm -f .whl/pretty_midi-*.whl          # nothing in src/ imports it (only the test extra's muspy does)
du -sh .gpu-lite .whl
