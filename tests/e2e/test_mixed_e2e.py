"""``--cpu-policy mixed`` on the real libvirtd: a 2-vCPU guest with ``--dedicated-mask 0`` is defined through
libvirt and started; vCPU 0's thread runs on one whole core of its own, vCPU 1's on the shared pool, exactly
as the XML libvirt kept says, and ``vmtune check`` on that XML reports nothing.

Everything expected is derived from the live host: the first NUMA node with a whole core (every thread
online) and one more online CPU outside that core; ``--reserve`` is every other online CPU, so the plan has
exactly that core and that CPU to work with. A host without such a node is skipped, saying so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2ehelp import URI, Libvirt, emulator_affinity, record, vcpu_affinity, vmtune
from lxml import etree

from sysfsgen import NAMED_HOSTS, write_sysfs
from vmtune.adapters.sysfs import read_sysfs
from vmtune.cpuset import CpuSet

pytestmark = pytest.mark.e2e


def _room() -> tuple[CpuSet, CpuSet] | None:
    """(the whole core kept for the dedicated vCPU, the CPUs the plan may use) on the live host."""
    host = read_sysfs(Path("/"))
    for node in host.nodes:
        for core in host.cores:
            if core.node != node.id or not core.cpus or not core.cpus.issubset(host.online):
                continue
            others = (node.cpus & host.online) - core.cpus
            if others:
                return core.cpus, core.cpus | CpuSet([others.first()])
    return None


def test_mixed_guest_defines_starts_and_runs_where_planned(
    libvirt_session: Libvirt, make_guest, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    room = _room()
    if room is None:
        pytest.skip(f"no NUMA node here has a whole core plus one more CPU ({read_sysfs(Path('/')).online})")
    _, usable = room
    reserve = read_sysfs(Path("/")).online - usable
    name = make_guest(vcpus=2)
    res = vmtune("apply", "--connect", URI, "--domain", name, "--cpu-policy", "mixed",
                 "--dedicated-mask", "0", "--reserve", str(reserve))  # fmt: skip
    assert res.returncode == 0, res.stderr
    dom = libvirt_session.conn.lookupByName(name)
    xml = dom.XMLDesc(libvirt_session.lv.VIR_DOMAIN_XML_INACTIVE)
    root = etree.fromstring(xml.encode())
    pins = {
        int(p.get("vcpu")): CpuSet.parse(p.get("cpuset"), what="vcpupin")
        for p in root.iterfind("cputune/vcpupin")
    }
    host = read_sysfs(Path("/"))
    dedicated, pool = pins[0], pins[1]
    assert len(dedicated) == 1 and dedicated.issubset(usable)
    core = host.core_of(dedicated.first())
    assert core is not None
    assert pool and pool.issubset(usable) and pool.isdisjoint(core.cpus)  # the core is the vCPU's alone
    assert (
        root.find("metadata") is not None
        and "dedicated-mask" in etree.tostring(root.find("metadata")).decode()
    )
    topology = root.find("cpu/topology")
    assert topology is not None and topology.get("threads") == "1"

    dom.create()
    measured = vcpu_affinity(name)
    record(f"{name}: mixed --dedicated-mask 0: plan vcpupin {{0: {dedicated}, 1: {pool}}}; measured vCPU "
           f"{measured}; emulator threads {sorted(emulator_affinity(name))}")  # fmt: skip
    assert measured == {0: str(dedicated), 1: str(pool)}

    saved = tmp_path / f"{name}.xml"
    saved.write_text(xml)
    check = vmtune("check", str(saved), "--fail-on", "info")
    assert check.returncode == 0, check.stdout + check.stderr


def test_odd_guest_shape_is_one_libvirt_starts(libvirt_session: Libvirt, make_guest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A 3-vCPU guest planned for a 2-thread-per-core host (a named fixture: this host may have no SMT) gets
    ``<vcpu current='3'>4</vcpu>`` and 1 socket x 2 cores x 2 threads. libvirt is the referee: it defines
    and starts that shape (pins moved onto this host's CPUs, the fixture's do not exist here) with 3 vCPUs
    online of 4."""
    root = tmp_path / "smt-host"
    write_sysfs(NAMED_HOSTS["dual-skylake-ht-interleaved"], root)
    name = make_guest(vcpus=3)
    dom = libvirt_session.conn.lookupByName(name)
    src = tmp_path / "guest.xml"
    src.write_text(dom.XMLDesc(libvirt_session.lv.VIR_DOMAIN_XML_INACTIVE))
    out = tmp_path / "planned.xml"
    res = vmtune("apply", str(src), "--sysfs", str(root), "-o", str(out))
    assert res.returncode == 0, res.stderr
    planned = etree.fromstring(out.read_bytes())
    vcpu = planned.find("vcpu")
    assert vcpu is not None and (vcpu.text, vcpu.get("current")) == ("4", "3")
    topology = planned.find("cpu/topology")
    assert topology is not None and (topology.get("cores"), topology.get("threads")) == ("2", "2")
    here = str(read_sysfs(Path("/")).online)
    for elem in planned.iter("vcpupin", "emulatorpin", "vcpu"):
        if elem.get("cpuset") is not None:
            elem.set("cpuset", here)
    libvirt_session.conn.defineXML(etree.tostring(planned).decode())
    dom = libvirt_session.conn.lookupByName(name)
    dom.create()
    lv = libvirt_session.lv
    live = dom.vcpusFlags(lv.VIR_DOMAIN_VCPU_LIVE)
    maximum = dom.vcpusFlags(lv.VIR_DOMAIN_VCPU_LIVE | lv.VIR_DOMAIN_VCPU_MAXIMUM)
    record(f"{name}: odd guest planned for a 2-thread host: libvirt runs {live} of {maximum} vCPUs")
    assert (live, maximum) == (3, 4)
    kept = etree.fromstring(dom.XMLDesc(0).encode()).find("cpu/topology")
    assert kept is not None and kept.get("threads") == "2"
