"""Named hosts and guests for the tuning tests, built as plain data through ``hosts`` (no sysfs reader).

Each host is a shape the tuning gates care about: vendor (evmcs, topoext, APICv vs AVIC), SMT, NUMA
nodes and their free hugepages.
"""

from __future__ import annotations

from hosts import host_of
from sysfsgen import HostSpec, NodeMem, parse_cpulist
from vmtune.core.guest import GuestSpec, GuestTopology, HypervFeature, Memballoon, Timer
from vmtune.core.intent.model import OsFamily
from vmtune.core.topology.model import Host, HugePages

__all__ = ["GUESTS", "HOSTS", "make_host"]

GIB = 1048576


def make_host(
    name: str,
    *,
    vendor: str,
    nodes: int,
    cores_per_node: int,
    threads: int,
    hugepages: dict[int, tuple[HugePages, ...]],
    isolated: str = "",
) -> Host:
    """One socket per node, 64 GiB per node (48 free), no cache groups; CPU ids: thread t of core c is
    ``c + t * total_cores`` (Linux's usual x86 numbering); ``isolated`` CPUs are nohz_full too."""
    pools = {n: {hp.size_kib: (hp.total, hp.free) for hp in hugepages.get(n, ())} for n in range(nodes)}
    spec = HostSpec(
        name=name,
        sockets=nodes,
        cores_per_node=cores_per_node,
        threads_per_core=threads,
        sibling_numbering="interleaved",
        node_mem={n: NodeMem(64 * GIB, 48 * GIB, huge) for n, huge in pools.items()},
        cache_info=False,
        isolated=parse_cpulist(isolated),
        nohz_full=parse_cpulist(isolated),
        vendor=vendor,
    )
    return host_of(spec)


def _pools(gib_free: int, gib_total: int, two_m_free: int, two_m_total: int) -> tuple[HugePages, ...]:
    return (
        HugePages(size_kib=2048, total=two_m_total, free=two_m_free),
        HugePages(size_kib=GIB, total=gib_total, free=gib_free),
    )


HOSTS: dict[str, Host] = {
    # 2-node AMD EPYC with SMT2; 1G pages reserved on node 0 only.
    "epyc-2n": make_host(
        "epyc-2n",
        vendor="AMD",
        nodes=2,
        cores_per_node=8,
        threads=2,
        hugepages={0: _pools(16, 16, 4096, 4096), 1: _pools(0, 0, 0, 0)},
    ),
    # 1-node Intel Xeon with SMT2, 2M pages only, cores 4-7 already isolated (isolcpus + nohz_full).
    "xeon-1n": make_host(
        "xeon-1n",
        vendor="Intel",
        nodes=1,
        cores_per_node=8,
        threads=2,
        hugepages={0: _pools(0, 0, 4096, 4096)},
        isolated="4-7,12-15",
    ),
    # small Intel box with hugepage pools but nothing reserved.
    "nuc-nohuge": make_host(
        "nuc-nohuge",
        vendor="Intel",
        nodes=1,
        cores_per_node=4,
        threads=1,
        hugepages={0: _pools(0, 0, 0, 0)},
    ),
}

GUESTS: dict[str, GuestSpec] = {
    "win11": GuestSpec(
        name="win11",
        source="win11.xml",
        vcpus=4,
        memory_kib=8 * GIB,
        cpu_mode="host-model",
        topology=GuestTopology(sockets=1, cores=2, threads=2),
        os_family=OsFamily.WINDOWS,
        os_id="http://microsoft.com/win/11",
        hyperv_mode="custom",
        hyperv=(HypervFeature(name="relaxed"), HypervFeature(name="vapic")),
        timers=(Timer(name="rtc", tickpolicy="catchup"), Timer(name="hpet", present=True)),
        memballoon=Memballoon(model="virtio"),
    ),
    "linux": GuestSpec(
        name="linux",
        source="linux.xml",
        vcpus=4,
        memory_kib=4 * GIB,
        topology=GuestTopology(sockets=1, cores=4, threads=1),
        os_family=OsFamily.LINUX,
        memballoon=Memballoon(model="virtio", autodeflate=True),
    ),
    "nfv": GuestSpec(
        name="nfv",
        source="nfv.xml",
        vcpus=6,
        memory_kib=4 * GIB,
        cpu_mode="host-model",
        topology=GuestTopology(sockets=1, cores=3, threads=2),
        os_family=OsFamily.LINUX,
        memballoon=Memballoon(model="virtio"),
        hostdev_pci=("0000:3b:00.0",),
    ),
}
