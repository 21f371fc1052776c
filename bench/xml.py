"""Benchmark: `vmtune plan` on one guest vs `virt-xml --edit --cputune ... --print-diff`, and batch planning.

1. One guest end to end (process start to exit, median of N runs): ``vmtune plan FILE --sysfs HOST``
   against ``virt-xml --edit --cputune vcpupin0.vcpu=0,vcpupin0.cpuset=2,... --print-diff < FILE``
   (Debian virtinst, which reads the domain from stdin), doing only the pinning edit on the same file.
   Target: vmtune's median <= half of virt-xml's.
2. Batch planning of every domain in the shared corpus in one process (read, plan with the real planner,
   apply, serialize, diff), as ``vmtune plan DIR`` does; files/s. Target: >= 200 files/s.

    .venv/bin/python bench/xml.py [--runs 7] [--host hwloc-16em64t-4s2c2t]

Prints a markdown table; exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
CORPORA = REPO.parent / "shared" / "corpora"
FILE = REPO / "tests" / "data" / "domains" / "linux-server.xml"


def _time(cmd: list[str], stdin: Path | None, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        with stdin.open("rb") if stdin else open("/dev/null", "rb") as fh:
            subprocess.run(cmd, stdin=fh, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - start)
    return out


def batch(host: Path) -> tuple[int, int, float]:
    from vmtune.adapters.sysfs import read_sysfs
    from vmtune.cli.plan_batch import planner_for, prepare
    from vmtune.core.intent import Intent
    from vmtune.errors import VmtuneError

    files = sorted(p for p in (CORPORA / "domains").rglob("*.xml"))
    topo = read_sysfs(host)
    planner = planner_for(host=topo, intent_of=lambda g: g.intent or Intent(), caps=None)
    ok = 0
    start = time.perf_counter()
    for path in files:
        try:
            prepare(path, planner, []).diff()
            ok += 1
        except VmtuneError:
            pass  # infeasible guests (more vCPUs than the host) are part of the work too
    return len(files), ok, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--host", default="hwloc-16em64t-4s2c2t")
    args = parser.parse_args()
    host = CORPORA / "sysfs" / args.host
    vmtune = [sys.executable, "-m", "vmtune", "plan", str(FILE), "--sysfs", str(host)]
    pins = ",".join(f"vcpupin{i}.vcpu={i},vcpupin{i}.cpuset={i + 2}" for i in range(4))
    virtxml = shutil.which("virt-xml")
    ours = _time(vmtune, None, args.runs)
    rows = [("vmtune plan (end to end)", ours)]
    theirs: list[float] = []
    if virtxml:
        theirs = _time([virtxml, "--edit", "--cputune", pins, "--print-diff"], FILE, args.runs)
        rows.append(("virt-xml --edit --cputune --print-diff", theirs))
    print("| command | median s | fastest s |\n|---|---|---|")
    for name, times in rows:
        print(f"| {name} | {statistics.median(times):.3f} | {min(times):.3f} |")
    total, ok, secs = batch(host)
    print(f"\nbatch: {total} corpus files ({ok} planned, {total - ok} refused) in {secs:.2f} s = "
          f"{total / secs:.0f} files/s (target >= 200)")  # fmt: skip
    missed = total / secs < 200
    if theirs:
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"single guest: vmtune/virt-xml = {ratio:.2f} (target <= 0.50)")
        missed = missed or ratio > 0.5
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
