"""Benchmark what users wait on: the libvirt hook on every guest start, one `vmtune plan`, batch planning.

1. Process start to exit, median of N interleaved runs (run 1 of each command, then run 2, ...) so that a
   load change on a shared machine hits every row alike; vmtune's sources are byte-compiled first, as an
   installed package is. ``python -m vmtune.hook`` is what libvirt runs on every guest start/stop
   (``started begin``: nothing to plan) and on an incoming migration (``migrate begin``: re-plan the XML on
   stdin for this host; tests/data/hosts/dual-skylake-ht-interleaved, an already-tuned guest, empty state
   directories). ``vmtune plan FILE --sysfs HOST`` is one interactive plan, shown without a target.
2. Batch planning of every domain in the shared corpus in one process (read, plan with the real planner,
   apply, serialize, diff), as ``vmtune plan DIR`` does; files/s. Target: >= 200 files/s.

    .venv/bin/python bench/xml_speed.py [--runs 7] [--host hwloc-16em64t-4s2c2t]

Prints a markdown table; exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
CORPORA = Path(os.environ.get("VMTUNE_CORPORA", REPO.parent / "shared" / "corpora"))
FILE = REPO / "tests" / "data" / "domains" / "linux-server.xml"
HOOK_HOST = REPO / "tests" / "data" / "hosts" / "dual-skylake-ht-interleaved"
HOOK_GUEST = REPO / "tests" / "data" / "domains" / "already-tuned.xml"

Cmd = tuple[list[str], Path | None]  # argv, stdin


def _time(cmds: dict[str, Cmd], runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Wall time of each command, process start to exit; the runs of all commands interleaved."""
    out: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, (cmd, stdin) in cmds.items():
            start = time.perf_counter()
            with stdin.open("rb") if stdin else open("/dev/null", "rb") as fh:
                subprocess.run(
                    cmd, stdin=fh, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env
                )
            out[name].append(time.perf_counter() - start)
    return out


def batch(host: Path) -> tuple[int, int, float]:
    from vmtune.adapters.files import read_bytes
    from vmtune.adapters.sysfs import read_sysfs
    from vmtune.core.intent.model import Intent
    from vmtune.errors import VmtuneError
    from vmtune.service import plan_document

    files = sorted(p for p in (CORPORA / "domains").rglob("*.xml"))
    topo = read_sysfs(host)
    ok = 0
    start = time.perf_counter()
    for path in files:
        try:
            planned = plan_document(
                read_bytes(path),
                source=str(path),
                host=topo,
                tenants=[],
                intent=lambda g: g.intent or Intent(),
                caps=None,
                label=path.name,
            )
            planned.diff()
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
    compileall.compile_dir(REPO / "src" / "vmtune", quiet=1)
    vmtune = [sys.executable, "-m", "vmtune", "plan", str(FILE), "--sysfs", str(host)]
    script = Path(sys.executable).parent / "vmtune"
    hook = [sys.executable, "-m", "vmtune.hook", "g"]
    cmds: dict[str, Cmd] = {"vmtune plan (end to end)": (vmtune, None)}
    if script.is_file():
        cmds["vmtune plan, console script"] = ([str(script), *vmtune[3:]], None)
    cmds["python -m vmtune.hook g started begin -"] = ([*hook, "started", "begin", "-"], HOOK_GUEST)
    cmds["python -m vmtune.hook g migrate begin - < XML"] = ([*hook, "migrate", "begin", "-"], HOOK_GUEST)
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "VMTUNE_HOOK_STATE_DIR": state, "VMTUNE_HOOK_STATUS_DIR": state,
               "VMTUNE_HOOK_SYSFS": str(HOOK_HOST), "VMTUNE_HOOK_DOMCAPS": ""}  # fmt: skip
        times = _time(cmds, args.runs, env)
    print(f"| command ({args.runs} runs each, interleaved) | median s | fastest s |\n|---|---|---|")
    for name, runs in times.items():
        print(f"| {name} | {statistics.median(runs):.3f} | {min(runs):.3f} |")
    total, ok, secs = batch(host)
    print(f"\nbatch: {total} corpus files ({ok} planned, {total - ok} refused) in {secs:.2f} s = "
          f"{total / secs:.0f} files/s (target >= 200)")  # fmt: skip
    return 1 if total / secs < 200 else 0


if __name__ == "__main__":
    sys.exit(main())
