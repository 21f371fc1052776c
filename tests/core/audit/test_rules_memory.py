"""Memory rules VT201-VT206 on GuestSpecs built in code: each fires on its bad guest, not on the twin."""

from __future__ import annotations

import pytest

from rulehosts import check_fires_on_bad_not_on_fixed, findings, guest, make_host, pins
from vmtune.core.audit.engine import Family, catalog
from vmtune.core.guest import GuestSpec, MemNode, MemoryBacking, NumaCell
from vmtune.core.plan import Level
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

H = make_host()  # node 0 = CPUs 0-3,8-11; node 1 = 4-7,12-15
HP = make_host(hugepages_free=(512, 2048))  # free 2M pages: 1 GiB on node 0, 4 GiB on node 1
GIB = 1024 * 1024
NODE0 = CpuSet.parse("0")
NODE1 = CpuSet.parse("1")
HUGE = MemoryBacking(hugepages=True)


def _cells(*cpus: str) -> tuple[NumaCell, ...]:
    return tuple(NumaCell(id=i, cpus=CpuSet.parse(c), memory_kib=2 * GIB) for i, c in enumerate(cpus))


def _memnodes(*nodes: int) -> tuple[MemNode, ...]:
    return tuple(MemNode(cellid=i, mode="strict", nodeset=CpuSet((n,))) for i, n in enumerate(nodes))


WIDE_PINS = pins("0", "8", "4", "12")

CASES: list[tuple[str, str, GuestSpec, GuestSpec, Host, Level | None]] = [
    ("remote-memory", "VT201",
     guest(vcpupins=pins("0", "8"), numatune_mode="strict", numatune_nodeset=NODE1),
     guest(vcpupins=pins("0", "8"), numatune_mode="strict", numatune_nodeset=NODE0), H, Level.WARNING),
    ("missing-node", "VT201",
     guest(vcpupins=pins("0", "8"), numatune_mode="strict", numatune_nodeset=CpuSet.parse("3")),
     guest(vcpupins=pins("0", "8"), numatune_mode="strict", numatune_nodeset=NODE0), H, Level.ERROR),
    ("memnode-remote", "VT201",
     guest(vcpupins=WIDE_PINS, numa_cells=_cells("0-1", "2-3"), memnodes=_memnodes(1, 0)),
     guest(vcpupins=WIDE_PINS, numa_cells=_cells("0-1", "2-3"), memnodes=_memnodes(0, 1)), H, None),
    ("hugepages-no-numatune", "VT202",
     guest(vcpupins=pins("0", "8"), memory_backing=HUGE),
     guest(vcpupins=pins("0", "8"), memory_backing=HUGE, numatune_mode="strict", numatune_nodeset=NODE0),
     H, None),
    ("locked-no-numatune", "VT202",
     guest(vcpupins=pins("0", "8"), memory_backing=MemoryBacking(locked=True)),
     guest(vcpupins=pins("0", "8"), memory_backing=MemoryBacking(locked=True),
           numatune_mode="strict", numatune_nodeset=NODE0), H, None),
    ("wide-pinned-no-cells", "VT203",
     guest(vcpupins=WIDE_PINS), guest(vcpupins=WIDE_PINS, numa_cells=_cells("0-1", "2-3")), H, None),
    ("wider-than-a-node", "VT203", guest(vcpus=12), guest(vcpus=8), H, None),
    ("cells-unbound", "VT204",
     guest(vcpupins=WIDE_PINS, numa_cells=_cells("0-1", "2-3"), memnodes=_memnodes(0)),
     guest(vcpupins=WIDE_PINS, numa_cells=_cells("0-1", "2-3"), memnodes=_memnodes(0, 1)), H, None),
    ("hugepages-short", "VT205",
     guest(memory_kib=2 * GIB, memory_backing=HUGE, numatune_mode="strict", numatune_nodeset=NODE0),
     guest(memory_kib=2 * GIB, memory_backing=HUGE, numatune_mode="strict", numatune_nodeset=NODE1),
     HP, Level.ERROR),
    ("hugepages-short-per-cell", "VT205",
     guest(memory_kib=4 * GIB, memory_backing=HUGE, vcpupins=WIDE_PINS, numa_cells=_cells("0-1", "2-3"),
           memnodes=_memnodes(0, 0)),
     guest(memory_kib=4 * GIB, memory_backing=HUGE, vcpupins=WIDE_PINS, numa_cells=_cells("0-1", "2-3"),
           memnodes=_memnodes(1, 1)), HP, Level.ERROR),
    ("node-overbooked", "VT206",
     guest(memory_kib=62 * GIB, numatune_mode="strict", numatune_nodeset=NODE0),
     guest(memory_kib=60 * GIB, numatune_mode="strict", numatune_nodeset=NODE0), H, Level.ERROR),
    ("pages-overbooked", "VT206",
     guest(memory_kib=2 * GIB, memory_backing=HUGE, numatune_mode="strict", numatune_nodeset=NODE0),
     guest(memory_kib=2 * GIB, memory_backing=HUGE, numatune_mode="strict", numatune_nodeset=NODE1),
     HP, Level.ERROR),
]  # fmt: skip


@pytest.mark.parametrize(("code", "bad", "fixed", "host", "severity"), [c[1:] for c in CASES],
                         ids=[f"{c[1]}-{c[0]}" for c in CASES])  # fmt: skip
def test_rule_fires_on_bad_not_on_fixed(
    code: str, bad: GuestSpec, fixed: GuestSpec, host: Host, severity: Level | None
) -> None:
    check_fires_on_bad_not_on_fixed(code, bad, fixed, host=host, severity=severity)


def test_every_memory_rule_has_a_case() -> None:
    assert {c[1] for c in CASES} == {r.code for r in catalog() if r.family is Family.MEMORY}


def test_interleave_is_never_a_numa_miss() -> None:
    g = guest(vcpupins=pins("0", "8"), numatune_mode="interleave", numatune_nodeset=NODE1)
    assert findings("VT201", (g,)) == ()


def test_vt205_unknown_hugepages_say_nothing() -> None:
    g = guest(memory_kib=64 * GIB, memory_backing=HUGE)
    assert findings("VT205", (g,), host=H) == ()  # H's nodes list no hugepage sizes at all


def test_vt205_skips_running_guests_they_hold_their_pages() -> None:
    g = guest(memory_kib=64 * GIB, memory_backing=HUGE, running=True)
    assert findings("VT205", (g,), host=HP) == ()


def test_vt205_message_says_needed_vs_free() -> None:
    g = guest(memory_kib=2 * GIB, memory_backing=HUGE, numatune_mode="strict", numatune_nodeset=NODE0)
    (f,) = findings("VT205", (g,), host=HP)
    assert f.message == "needs 1024 free 2M hugepages on node 0, host has 512"


def test_single_node_host_has_no_wide_guests() -> None:
    host = make_host(nodes=1)
    assert findings("VT203", (guest(vcpus=64),), host=host) == ()
    assert findings("VT204", (guest(vcpupins=pins("0", "1"), numa_cells=_cells("0", "1")),), host=host) == ()


def test_vt206_counts_every_tenant_once() -> None:
    # 64 GiB nodes hold 60.8 GiB for guests (the default reserve: 1/20): two 40 GiB guests don't fit one
    a = guest("a", memory_kib=40 * GIB, numatune_mode="strict", numatune_nodeset=NODE0)
    b = guest("b", memory_kib=40 * GIB, numatune_mode="interleave", numatune_nodeset=CpuSet.parse("0-1"))
    c = guest("c", memory_kib=40 * GIB, numatune_mode="strict", numatune_nodeset=NODE0)
    assert findings("VT206", (a,), host=H, tenants=(a, b)) == ()
    hits = findings("VT206", (a,), host=H, tenants=(a, c))
    assert [h.message for h in hits] == [
        "80 GiB bound to node 0, which holds 60.8 GiB for guests (MemTotal less hugepage pools and the "
        "3.2 GiB reserve): held by a, c (this guest 40 GiB)"
    ]
    # memory without a binding, or preferred, is never a node's
    loose = guest("d", memory_kib=40 * GIB, numatune_mode="preferred", numatune_nodeset=NODE0)
    assert findings("VT206", (a,), host=H, tenants=(loose, guest("e", memory_kib=40 * GIB))) == ()
