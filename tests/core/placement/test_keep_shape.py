"""A guest keeps the shape it has: re-plans are byte-identical, cells are kept and bound, ``--reshape``
gives a new shape that still carries ``memAccess`` and leaves memory devices out of the cells."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from abiguests import GIB, GUESTS, corpus_roots, domain, named_roots
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.intent.model import CpuPolicy, Intent, Numa, VcpuMask
from vmtune.core.topology.model import Host
from vmtune.core.verify.abi import abi_changes
from vmtune.errors import InfeasibleError, InputError
from vmtune.service import plan_document
from vmtune.xmlmap.guest import read_guest

ROOTS = named_roots() + corpus_roots()


def _plan(xml: bytes, host: Host, intent: Intent | None = None) -> bytes:
    return plan_document(xml, source="g.xml", host=host, tenants=(), intent=intent, caps=None).after


def _sizes(host: Host) -> list[int]:
    """A small guest, one a little wider than the largest node, and one over most of the host."""
    node = max(len(n.cpus) for n in host.nodes)
    total = len(host.online)
    return sorted({4, min(node + 2, total - 2), total * 3 // 4} - {0})


def test_plan_apply_plan_is_identical_bytes() -> None:
    tried = same = 0
    for root in ROOTS:
        host = read_sysfs(root)
        for vcpus in _sizes(host):
            xml = domain("wide", vcpus=vcpus, memory_kib=vcpus * 256 * 1024 + 12345, intent=None)
            try:
                first = _plan(xml, host, Intent())
            except InfeasibleError:
                continue
            tried += 1
            again, flagged = _plan(first, host), _plan(first, host, Intent())
            same += again == first == flagged
            assert again == first, (root.name, vcpus)
            assert flagged == first, (root.name, vcpus)
    print(f"\nidempotence: {same}/{tried} (hosts x wide guests) plan -> apply -> plan identical")
    assert tried >= len(ROOTS)


def _two_nodes() -> Host:
    return read_sysfs(next(r for r in named_roots() if r.name == "dual-ht-adjacent"))


def _cells(xml: bytes) -> list[tuple[str, int, str | None]]:
    return [(str(c.cpus), c.memory_kib, c.mem_access) for c in read_guest(xml, source="x").numa_cells]


def test_user_cells_survive_plan_and_shared_policy() -> None:
    host = _two_nodes()
    for intent in (Intent(), Intent(cpu_policy=CpuPolicy.SHARED)):
        out = _plan(domain("u", vcpus=8, cells=(("0-3", GIB), ("4-7", GIB)), intent=None), host, intent)
        assert _cells(out) == [("0-3", GIB, None), ("4-7", GIB, None)]
        assert b"<memnode cellid='0'" in out and b"<memnode cellid='1'" in out


def test_reshape_gives_a_new_shape_once() -> None:
    host = _two_nodes()
    xml = domain("r", vcpus=20, cells=(("0-19", 4 * GIB),), intent=None)
    kept = _plan(xml, host, Intent())
    assert _cells(kept) == [("0-19", 4 * GIB, None)]
    reshaped = _plan(xml, host, Intent(reshape=True))
    assert len(_cells(reshaped)) == 2 and sum(k for _, k, _ in _cells(reshaped)) == 4 * GIB
    assert b"reshape" not in reshaped  # one-shot: a later re-plan keeps this shape
    assert _plan(reshaped, host) == reshaped


def test_virtiofs_cell_keeps_shared_memory() -> None:
    host = _two_nodes()
    xml = domain("fs", vcpus=20, cells=(("0-19", 4 * GIB),), cell_attrs=" memAccess='shared'", intent=None)
    assert _cells(_plan(xml, host, Intent())) == [("0-19", 4 * GIB, "shared")]
    reshaped = _cells(_plan(xml, host, Intent(reshape=True)))
    assert len(reshaped) == 2 and {a for _, _, a in reshaped} == {"shared"}


@pytest.mark.parametrize("reshape", [False, True])
def test_memory_hotplug_guest_does_not_grow(reshape: bool) -> None:
    host = _two_nodes()
    dimm = "<memory model='dimm'><target><size unit='GiB'>2</size><node>1</node></target></memory>"
    hotplug = "<maxMemory slots='4' unit='GiB'>128</maxMemory>"
    xml = domain("hp", vcpus=20, cells=(("0-9", 3 * GIB), ("10-19", 3 * GIB)), memory_kib=8 * GIB,
                 extra=hotplug, devices=dimm, intent=None)  # fmt: skip
    out = _plan(xml, host, Intent(reshape=reshape))
    guest = read_guest(out, source="x")
    assert guest.memory_kib == 8 * GIB and guest.max_memory_kib == 128 * GIB
    assert sum(c.memory_kib for c in guest.numa_cells) == 6 * GIB
    assert etree.fromstring(out).findtext("memory") == str(8 * GIB)


def test_mixed_policy_keeps_the_cells_a_memory_device_is_plugged_into() -> None:
    """``--cpu-policy mixed`` places its dedicated vCPUs as a part of their own; the guest keeps its cells
    (and the DIMM in cell 1) unless ``--reshape``."""
    host = _two_nodes()
    dimm = "<memory model='dimm'><target><size unit='GiB'>1</size><node>1</node></target></memory>"
    cells = (("0-1", GIB), ("2-3", GIB))
    xml = domain("mx", vcpus=4, cells=cells, memory_kib=3 * GIB, devices=dimm, intent=None)
    mixed = Intent(cpu_policy=CpuPolicy.MIXED, dedicated_mask=VcpuMask.parse("0"))
    out = _plan(xml, host, mixed)
    assert _cells(out) == [("0-1", GIB, None), ("2-3", GIB, None)]
    assert b"<memnode cellid='1'" in out


def test_a_guest_without_memory_element_is_as_big_as_its_cells() -> None:
    """libvirt fills ``<memory>`` in from the cells; a reshape splits that total, not zero."""
    host = _two_nodes()
    xml = domain("nm", vcpus=8, cells=(("0-3", GIB), ("4-7", GIB)), intent=None)
    xml = re.sub(rb"<memory[^>]*>[0-9]+</memory>", b"", xml)
    assert read_guest(xml, source="x").memory_kib == 2 * GIB
    reshaped = _cells(_plan(xml, host, Intent(reshape=True, numa=Numa.parse("2"))))
    assert sum(k for _, k, _ in reshaped) == 2 * GIB and len(reshaped) == 2


def test_cells_size_the_guest_whatever_memory_says() -> None:
    """libvirt's test data has a 214 MiB ``<memory>`` over a 14 GiB cell: libvirt runs the 14 GiB, so the
    hugepages and the memory ledger count 14 GiB too."""
    xml = domain("big-cell", vcpus=2, cells=(("0-1", 14 * GIB),), memory_kib=214 * 1024, intent=None)
    assert read_guest(xml, source="x").memory_kib == 14 * GIB
    dimm = "<memory model='dimm'><target><size unit='GiB'>2</size><node>0</node></target></memory>"
    xml = domain("dimm", vcpus=2, cells=(("0-1", GIB),), memory_kib=GIB, devices=dimm, intent=None)
    assert read_guest(xml, source="x").memory_kib == 3 * GIB


def test_reshape_refuses_hugepage_nodesets_naming_cells_it_drops() -> None:
    host = _two_nodes()
    pages = "<memoryBacking><hugepages><page size='2048' unit='KiB' nodeset='1'/></hugepages></memoryBacking>"
    half = GIB // 2  # the named host has 1000 free 2M pages per node
    xml = domain("hp", vcpus=4, cells=(("0-1", half), ("2-3", half)), extra=pages, intent=None)
    assert _cells(_plan(xml, host, Intent())) == [("0-1", half, None), ("2-3", half, None)]  # kept: fine
    with pytest.raises(InputError, match=r"/domain/memoryBacking/hugepages/page/@nodeset names guest cell"):
        _plan(xml, host, Intent(reshape=True, numa=Numa.parse("1")))


def test_numa_off_keeps_a_memory_placement_that_followed_vcpu_auto() -> None:
    """``<memory mode='preferred'/>`` follows ``<vcpu placement='auto'>``: pinning makes the vCPUs static,
    so the memory's ``auto`` is said out loud (libvirt asks static memory for a nodeset)."""
    xml = domain("auto", vcpus=1, intent=None).replace(b"placement='static'", b"placement='auto'")
    xml = xml.replace(b"<vcpu", b"<numatune><memory mode='preferred'/></numatune><vcpu")
    out = etree.fromstring(_plan(xml, _two_nodes(), Intent(numa=Numa.parse("off"))))
    assert out.find("vcpu").get("placement") == "static"  # type: ignore[union-attr]
    assert dict(out.find("numatune/memory").attrib) == {"mode": "preferred", "placement": "auto"}  # type: ignore[union-attr]


def test_hook_mode_is_binding_only(tmp_path: Path) -> None:
    """Even an intent that would change devices (hyperv, timers) leaves them alone when keeping the ABI."""
    host = _two_nodes()
    xml = GUESTS["two-cells"].replace(b"profile='balanced'", b"profile='windows,latency' iothreads='2'")
    planned = plan_document(xml, source="h", host=host, tenants=(), intent=None, caps=None, keep_abi=True)
    before, after = read_guest(xml, source="a"), read_guest(planned.after, source="b")
    assert abi_changes(before, after) == ()
    assert after.vcpupins and after.memnodes
    plan = planned.plan
    assert plan.cpu is None and plan.features is None and plan.timers is None and plan.intent is None
    assert replace(plan, notes=()) == replace(plan.binding_only(), notes=())


def test_reshape_refuses_a_pci_expander_bus_on_a_cell_it_drops() -> None:
    host = _two_nodes()
    pxb = (
        "<controller type='pci' index='1' model='pci-expander-bus'>"
        "<target busNr='254'><node>1</node></target></controller>"
    )
    xml = domain("pxb", vcpus=4, cells=(("0-1", GIB), ("2-3", GIB)), devices=pxb, intent=None)
    assert len(_cells(_plan(xml, host, Intent()))) == 2
    with pytest.raises(
        InputError, match=r"controller\[@type='pci'\]\[@index='1'\]/target/node names guest cell 1"
    ):
        _plan(xml, host, Intent(reshape=True, numa=Numa.parse("1")))
