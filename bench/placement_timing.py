"""Planning one guest on the 960-CPU host with 100 tenants, in-process, process CPU time.

The benchmark machine is shared: wall-clock time there measures the neighbours as much as the planner, so
the figure is ``time.process_time`` and the minimum is reported next to the median. ``timing_against``
times another checkout's planner (its ``src``) the same way, round by round in two worker processes taking
turns, so both see the same noise.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent / "tests"))

from placement_runs import MIB_PER_VCPU, bench_intent  # noqa: E402

from hosts import host_named  # noqa: E402
from planner_hosts import as_tenant  # noqa: E402
from vmtune.core.guest import GuestSpec  # noqa: E402
from vmtune.core.planner import plan_guest  # noqa: E402
from vmtune.core.topology.model import Host  # noqa: E402

__all__ = ["TARGET_MS", "plan_timing", "timing_against"]

TARGET_MS = 20.0
TENANTS = 100


def _setup() -> tuple[Host, list[GuestSpec]]:
    host = host_named("huge-960")
    tenants: list[GuestSpec] = []
    for i in range(TENANTS):
        spec = GuestSpec(name=f"t{i:03d}", source="t.xml", vcpus=4, memory_kib=4 * MIB_PER_VCPU * 1024)
        plan = plan_guest(host=host, guest=spec, tenants=tenants, intent=bench_intent())
        tenants.append(as_tenant(plan, spec))
    return host, tenants


def _once(host: Host, tenants: list[GuestSpec]) -> float:
    probe = GuestSpec(name="probe", source="p.xml", vcpus=8, memory_kib=8 * MIB_PER_VCPU * 1024)
    start = time.process_time()
    plan_guest(host=host, guest=probe, tenants=tenants, intent=bench_intent())
    return 1000 * (time.process_time() - start)


def plan_timing(rounds: int) -> tuple[float, float]:
    """(median, min) ms to plan one 8-vCPU guest on huge-960 next to 100 4-vCPU tenants."""
    host, tenants = _setup()
    times = [_once(host, tenants) for _ in range(rounds)]
    return statistics.median(times), min(times)


def timing_against(src: Path, rounds: int) -> dict[str, tuple[float, float]]:
    """{"this"|"against": (median, min) ms}, the two checkouts' planners timed in alternation."""
    srcs = {"this": HERE.parent.parent / "src", "against": src.resolve()}
    workers = {
        name: subprocess.Popen(
            [sys.executable, str(HERE)], env={**os.environ, "PYTHONPATH": str(path)},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for name, path in srcs.items()
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in workers}
    try:
        for proc in workers.values():
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for i in range(rounds):
            for name in list(workers)[:: 1 if i % 2 else -1]:
                proc = workers[name]
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
                times[name].append(float(proc.stdout.readline()))
    finally:
        for proc in workers.values():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait()
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def _worker() -> int:
    """Set up once, then one timed plan per line read on stdin."""
    host, tenants = _setup()
    print("ready", flush=True)
    for _ in sys.stdin:
        print(f"{_once(host, tenants):.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker())
