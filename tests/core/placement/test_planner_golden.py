"""Golden ``plan --explain``-style renderings of plans (tests/golden/plans/<host>--<case>.txt)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from planner_hosts import guest, host_named, render_plan, tenant
from testutil import GOLDEN, check_golden
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import (
    CoreKind,
    CpuPolicy,
    EmulatorPolicy,
    Intent,
    OsFamily,
    Profile,
    ThreadPolicy,
    VcpuMask,
)
from vmtune.core.planner import plan_guest

CASES: dict[str, tuple[str, GuestSpec, list[GuestSpec], Intent]] = {
    "balanced-4": ("dual-skylake-ht-interleaved", guest("web", 4, 8), [], Intent()),
    "wide-24": ("dual-skylake-ht-interleaved", guest("db", 24, 64), [], Intent()),
    "tenants-floating": (
        "dual-ht-adjacent",
        guest("app", 6, 4),
        [tenant("a", range(2, 10)), GuestSpec(name="drifter", source="drifter.xml", vcpus=2)],
        Intent(),
    ),
    "ccx-8": ("epyc-2ccx-per-node", guest("ccx", 8, 16), [tenant("small", [12, 44])], Intent()),
    "latency-isolate": (
        "dual-ht-adjacent",
        guest("lat", 4, 2),
        [],
        Intent(profiles=(Profile.LATENCY,), iothreads=1),
    ),
    "realtime": ("dual-skylake-ht-interleaved", guest("rt", 4, 2), [], Intent(profiles=(Profile.REALTIME,))),
    "realtime-iothread": (
        "dual-skylake-ht-interleaved",
        guest("rt", 4, 2),
        [],
        Intent(profiles=(Profile.REALTIME,), iothreads=1),
    ),
    "isolcpus-emulator-isolate": (
        "snc2-xeon",
        guest("nfv", 8, 8),
        [],
        Intent(emulator=EmulatorPolicy.ISOLATE, thread_policy=ThreadPolicy.REQUIRE),
    ),
    # 3 vCPUs: 2 whole cores, the 4th (offline) vCPU slot on vCPU 2's sibling, threads=2 told truthfully
    "odd-3": ("dual-skylake-ht-interleaved", guest("odd", 3, 2), [], Intent()),
    # Nova's mixed policy: vCPUs 0-1 on whole cores of their own, 2-5 on the shared pool of the same node
    # (node 1, the fuller one: best fit)
    "mixed-2of6": (
        "dual-skylake-ht-interleaved",
        guest("nfv", 6, 4),
        [tenant("db", [11, 31, 12, 32])],
        Intent(cpu_policy=CpuPolicy.MIXED, dedicated_mask=VcpuMask.parse("0-1")),
    ),
    "phytium-l2": ("phytium-s2500", guest("arm", 6, 4), [], Intent()),
    "hybrid-little": ("hybrid-pe", guest("batch", 4, 2), [], Intent(core_kind=CoreKind.LITTLE)),
    "windows-balanced": ("dual-skylake-ht-interleaved", guest("win", 4, 8), [], Intent(os=OsFamily.WINDOWS)),
    # overcommit: 4 vCPUs time-share the non-reserved CPU of a 2-CPU host (this CI machine's shape)
    "shared-overcommit": (
        "small-2cpu",
        guest("ci", 4, 2),
        [],
        Intent(cpu_policy=CpuPolicy.SHARED, iothreads=1),
    ),
    # a shared pool next to a dedicated tenant and another shared guest on node 0
    "shared-tenants": (
        "dual-skylake-ht-interleaved",
        guest("web", 6, 4),
        [
            tenant("db", [11, 31, 12, 32]),
            replace(tenant("batch", [1, 2, 3]), intent=Intent(cpu_policy=CpuPolicy.SHARED)),
        ],
        Intent(cpu_policy=CpuPolicy.SHARED),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_golden(case: str, regen: bool) -> None:
    host, g, tenants, intent = CASES[case]
    plan = plan_guest(host=host_named(host), guest=g, tenants=tenants, intent=intent)
    check_golden(GOLDEN / "plans" / f"{host}--{case}.txt", render_plan(plan), regen)
