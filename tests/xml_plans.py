"""Hand-written Plans for the XML engine tests (the planner is tested elsewhere; these pin the writer)."""

from __future__ import annotations

from vmtune.core.guest import (
    CacheAlloc,
    CacheTune,
    EmulatorSched,
    GuestTopology,
    HypervFeature,
    IOThreadPin,
    IOThreadSched,
    Memballoon,
    MemNode,
    MemoryBacking,
    NumaCell,
    Timer,
    VcpuPin,
    VcpuSched,
)
from vmtune.core.intent.model import EmulatorPolicy, Intent, Numa, Profile, ThreadPolicy, VcpuMask
from vmtune.core.plan import CpuPlan, FeaturesPlan, NumaTunePlan, Plan
from vmtune.cpuset import CpuSet

WINDOWS_HYPERV = (
    HypervFeature(name="relaxed"),
    HypervFeature(name="vapic"),
    HypervFeature(name="spinlocks", attrs=(("retries", "8191"),)),
    HypervFeature(name="vpindex"),
    HypervFeature(name="runtime"),
    HypervFeature(name="synic"),
    HypervFeature(name="stimer", children=("direct",)),
    HypervFeature(name="reset"),
    HypervFeature(name="frequencies"),
    HypervFeature(name="tlbflush"),
    HypervFeature(name="ipi"),
)
WINDOWS_TIMERS = (
    Timer(name="rtc", tickpolicy="catchup"),
    Timer(name="pit", tickpolicy="delay"),
    Timer(name="hpet", present=False),
    Timer(name="hypervclock", present=True),
)


def pinned(vcpus: int, first: int = 2, *, stride: int = 1) -> tuple[VcpuPin, ...]:
    return tuple(VcpuPin(vcpu=i, cpus=CpuSet([first + i * stride])) for i in range(vcpus))


def full_plan(vcpus: int) -> Plan:
    """Touches every owned element: used by the corpus round trip."""
    pins = pinned(vcpus)
    return Plan(
        guest="corpus",
        vcpu_placement="static",
        vcpu_cpuset=CpuSet().union(*(p.cpus for p in pins)),
        vcpupins=pins,
        emulatorpin=CpuSet([0, 1]),
        iothreads=1,
        iothreadpins=(IOThreadPin(iothread=1, cpus=CpuSet([0, 1])),),
        vcpusched=(VcpuSched(vcpus=CpuSet.range(1, vcpus - 1), scheduler="fifo", priority=1),)
        if vcpus > 1
        else (),
        emulatorsched=EmulatorSched(scheduler="fifo", priority=1),
        iothreadsched=(IOThreadSched(iothreads=CpuSet([1]), scheduler="fifo", priority=1),),
        cachetunes=(
            CacheTune(
                vcpus=CpuSet.range(0, vcpus - 1),
                caches=(CacheAlloc(id=0, level=3, type="both", size_bytes=3 << 20),),
            ),
        ),
        numatune=NumaTunePlan(mode="strict", nodeset=CpuSet([0])),
        cpu=CpuPlan(
            mode="host-passthrough",
            topology=GuestTopology(sockets=1, cores=vcpus, threads=1),
            features=(("require", "invtsc"),),
        ),
        features=FeaturesPlan(hyperv=WINDOWS_HYPERV, pmu=False, kvm_hint_dedicated=True),
        timers=WINDOWS_TIMERS,
        memory_backing=MemoryBacking(hugepages=True, page_size_kib=2048, locked=True),
        memballoon=Memballoon(model="none"),
        intent=Intent(profiles=(Profile.LATENCY, Profile.WINDOWS), emulator=EmulatorPolicy.ISOLATE),
    )


def wide_db_plan() -> Plan:
    """16 vCPUs over two host nodes (8 cores each, SMT siblings +32): guest NUMA mirrors the host."""
    pins = tuple(VcpuPin(vcpu=i, cpus=CpuSet([i // 2 + (i % 2) * 32 + (i // 8) * 4])) for i in range(16))
    return Plan(
        guest="db",
        vcpu_placement="static",
        vcpu_cpuset=CpuSet().union(*(p.cpus for p in pins)),
        vcpupins=pins,
        emulatorpin=CpuSet([0, 32]),
        numatune=NumaTunePlan(
            mode="strict",
            nodeset=CpuSet([0, 1]),
            memnodes=(
                MemNode(cellid=0, mode="strict", nodeset=CpuSet([0])),
                MemNode(cellid=1, mode="strict", nodeset=CpuSet([1])),
            ),
        ),
        cpu=CpuPlan(
            mode="host-passthrough",
            topology=GuestTopology(sockets=2, cores=4, threads=2),
            numa_cells=(
                NumaCell(id=0, cpus=CpuSet.range(0, 7), memory_kib=33554432, distances=((0, 10), (1, 21))),
                NumaCell(id=1, cpus=CpuSet.range(8, 15), memory_kib=33554432, distances=((0, 21), (1, 10))),
            ),
        ),
        memory_backing=MemoryBacking(hugepages=True, page_size_kib=1048576),
        intent=Intent(profiles=(Profile.LATENCY,), thread_policy=ThreadPolicy.REQUIRE, numa=Numa(nodes=2)),
    )


def realtime_plan() -> Plan:
    pins = pinned(4, first=4)
    return Plan(
        guest="nfv",
        vcpu_placement="static",
        vcpu_cpuset=CpuSet.range(4, 7),
        vcpupins=pins,
        emulatorpin=CpuSet([1]),
        vcpusched=(VcpuSched(vcpus=CpuSet.range(1, 3), scheduler="fifo", priority=1),),
        numatune=NumaTunePlan(mode="strict", nodeset=CpuSet([0])),
        cpu=CpuPlan(mode="host-passthrough", topology=GuestTopology(sockets=1, cores=4, threads=1)),
        features=FeaturesPlan(pmu=False),
        memory_backing=MemoryBacking(hugepages=True, page_size_kib=1048576, locked=True),
        memballoon=Memballoon(model="none"),
        intent=Intent(profiles=(Profile.REALTIME,), realtime_mask=VcpuMask.parse("^0")),
    )
