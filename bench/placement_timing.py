"""Planning one guest on the 960-CPU host with 100 tenants, in-process, process CPU time.

The benchmark machine is shared: wall-clock time there measures the neighbours as much as the planner, so
the figure is ``time.process_time`` and the minimum is reported next to the median.
"""

from __future__ import annotations

import statistics
import time

from placement_runs import MIB_PER_VCPU, bench_intent

from hosts import host_named
from planner_hosts import as_tenant
from vmtune.core.guest import GuestSpec
from vmtune.core.planner import plan_guest

__all__ = ["TARGET_MS", "plan_timing"]

TARGET_MS = 20.0
TENANTS = 100


def plan_timing(rounds: int) -> tuple[float, float]:
    """(median, min) ms to plan one 8-vCPU guest on huge-960 next to 100 4-vCPU tenants."""
    host = host_named("huge-960")
    intent = bench_intent()
    tenants: list[GuestSpec] = []
    for i in range(TENANTS):
        spec = GuestSpec(name=f"t{i:03d}", source="t.xml", vcpus=4, memory_kib=4 * MIB_PER_VCPU * 1024)
        tenants.append(as_tenant(plan_guest(host=host, guest=spec, tenants=tenants, intent=intent), spec))
    probe = GuestSpec(name="probe", source="p.xml", vcpus=8, memory_kib=8 * MIB_PER_VCPU * 1024)
    times = []
    for _ in range(rounds):
        start = time.process_time()
        plan_guest(host=host, guest=probe, tenants=tenants, intent=intent)
        times.append(1000 * (time.process_time() - start))
    return statistics.median(times), min(times)
