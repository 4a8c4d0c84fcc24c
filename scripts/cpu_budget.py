"""Run a command under a CPU-time budget: Ctrl-C (SIGINT) it once its CPU time (user + system) reaches the
budget, so `tunesmith train` stops with a checkpoint; then print the CPU and wall time it used.

    python scripts/cpu_budget.py SECONDS CMD [ARGS...]
    e.g. python scripts/cpu_budget.py 1500 tunesmith train configs/gan_rhythm.toml --out runs/gan_rhythm

On a shared machine the wall time is longer than the CPU time; budgets in docs/ are CPU seconds (one thread:
OMP_NUM_THREADS=1). The last line is JSON: {"cpu_s": ..., "wall_s": ..., "returncode": ...}.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a running process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python scripts/cpu_budget.py SECONDS CMD [ARGS...]", file=sys.stderr)
        return 2
    budget = float(argv[0])
    t0 = time.monotonic()
    proc = subprocess.Popen(argv[1:])
    sent = False
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            break
        try:
            used = cpu_seconds(proc.pid)
        except (FileNotFoundError, ProcessLookupError):
            used = 0.0
        if used >= budget and not sent:
            print(f"cpu_budget: {used:.0f} CPU s reached the budget of {budget:.0f}: SIGINT", file=sys.stderr, flush=True)
            proc.send_signal(signal.SIGINT)
            sent = True
        time.sleep(2.0)
    cpu = usage.ru_utime + usage.ru_stime
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"cpu_s": round(cpu, 1), "wall_s": round(time.monotonic() - t0, 1), "returncode": code,
                      "stopped_by_budget": sent}), flush=True)
    return 0 if (code == 0 or sent) else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
