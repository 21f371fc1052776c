"""The default reserve (``core.ledger.reserve``) as a table over named, synthetic and corpus hosts.

Each expectation is derived from the host's shape as its documentation states it (cluster sizes, which
cores are little, which die has the bigger L3), not from the code: the rule that should apply is named
beside each row.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hosts import host_named, host_of
from sysfsgen import CoreKind, HostSpec
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.ledger.pool import default_reserve, reservation
from vmtune.core.ledger.reserve import MAX_CORES, MAX_SHARE, default_reserve_of
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

S2500 = HostSpec(name="s2500x2", arch="aarch64", sockets=2, nodes_per_socket=8, cores_per_node=8,
                 kinds=(CoreKind(cores=8, l2_cores=4, l2_kib=2048, capacity=1024),))  # fmt: skip
ROME_NPS4 = HostSpec(name="rome-nps4", sockets=2, nodes_per_socket=4, cores_per_node=16, threads_per_core=2,
                     sibling_numbering="interleaved", l3_cores=4)  # fmt: skip
MILAN_NPS1 = HostSpec(name="milan-nps1", sockets=2, cores_per_node=64, threads_per_core=2,
                      sibling_numbering="interleaved", l3_cores=8)  # fmt: skip
X3D = HostSpec(name="x3d", cores_per_node=16, threads_per_core=2, l3_cores=8, l3_kib=32768)


def _x3d() -> Host:
    """A 7950X3D-like host: two 8-core dies, the first with 96 MiB of L3 (V-Cache), the second 32 MiB."""
    host = host_of(X3D)
    first = min(g.index for g in host.groups(3))
    caches = tuple(replace(g, size_kib=98304) if g.index == first else g for g in host.caches)
    return replace(host, caches=caches)


# host, expected reserve, the rule's words
SYNTHETIC = [
    # one 4-core L2 cluster per socket: 4/64 of a socket (a cluster per 8-core node would be half of it)
    (host_of(S2500), "0-3,64-67", "one whole L2 group per socket (4 cores)"),
    (host_named("phytium-s2500"), "0-3", "one whole L2 group per socket (4 cores)"),
    # a 4-core CCX of a 16-core node is a quarter: per socket instead (4 of 64 cores)
    (host_of(ROME_NPS4), "0-3,128-131,64-67,192-195", "one whole L3 group per socket (4 cores)"),
    (host_named("epyc-2ccx-per-node"), "0-3,32-35", "one whole L3 group per socket (4 cores)"),
    # an 8-core CCD is more than MAX_CORES: the first core of each node, as before
    (host_of(MILAN_NPS1), "0,64,128,192", "the first core of each NUMA node"),
    # nothing shared below the node (L3 = socket = node, private L2): unchanged
    (host_named("dual-skylake-ht-interleaved"), "0,10,20,30", "the first core of each NUMA node"),
    (host_named("dual-ht-adjacent"), "0-1,16-17", "the first core of each NUMA node"),
    (host_named("snc2-xeon"), "0,10,20,30,40,50,60,70", "the first core of each NUMA node"),
    # hybrid: the first E-core cluster (16-19), the P-cores stay whole
    (host_named("hybrid-pe"), "16-19", "one cluster of little cores per package"),
    # X3D: the first core of the smaller-L3 die, with its sibling
    (_x3d(), "16-17", "the first core of the smaller-L3 die"),
]


@pytest.mark.parametrize(("host", "cpus", "why"), SYNTHETIC, ids=[h.name for h, *_ in SYNTHETIC])
def test_synthetic_hosts(host: Host, cpus: str, why: str) -> None:
    chosen = default_reserve_of(host)
    assert chosen.cpus == CpuSet.parse(cpus)
    assert chosen.why.startswith(why)
    assert default_reserve(host) == chosen.cpus


# corpus machine, expected reserve, rule
CORPUS = [
    # Raptor Lake: E-cores 12-15 share one L2 (cluster_id), 16-19 another
    ("hwloc-20em64t-hybrid-1p6c2t+2ca4co1t", "12-15", "one cluster of little cores per package"),
    # GB10: each little core has its own L2 and the L3 holds big ones too: the first little core
    ("hwloc-nvidia-dgx-gb10", "0", "the first little core per package"),
    # EPYC 7451 (Naples): 3-core CCXs, 24 cores a socket; 3 <= 24/8
    ("utillinux-x86_64-epyc_7451", "0-2,24-26,48-50,72-74", "one whole L3 group per socket (3 cores)"),
    # s390 LPAR without cache data: sockets 4 and 6 are lone cores (15, 19): the first one
    ("utillinux-s390-lpar", "15", "one whole socket per NUMA node (1 core)"),
    # Kunpeng 920: L3 per node, private L2 (clusters share no cache): first core of each node
    ("hwloc-128arm-2pa2n8cluster4co", "0,32,64,96", "the first core of each NUMA node"),
    ("hwloc-32intel64-2p8co2t+8ve", "0,8,16,24", "the first core of each NUMA node"),
    # POWER7: physical_package_id -1 and a package mask per core, so 8 one-core sockets per node: one core
    # per socket would be every core; the first core of each node instead
    (
        "hwloc-256ppc-8n8s4t",
        "0-3,32-35,64-67,96-99,128-131,160-163,192-195,224-227",
        "the first core of each NUMA node",
    ),
]


@pytest.mark.parametrize(("name", "cpus", "why"), CORPUS)
def test_corpus_hosts(corpora: Path, name: str, cpus: str, why: str) -> None:
    chosen = default_reserve_of(read_sysfs(corpora / "sysfs" / name))
    assert chosen.cpus == CpuSet.parse(cpus)
    assert chosen.why.startswith(why)


def test_never_a_large_share_of_any_corpus_node(corpora: Path) -> None:
    # a whole group is at most MAX_CORES cores and MAX_SHARE of its node or socket; else one core a node
    for root in sorted(p for p in (corpora / "sysfs").iterdir() if p.is_dir()):
        host = read_sysfs(root)
        chosen = default_reserve_of(host)
        reserved_cores = [c for c in host.cores if c.cpus and c.cpus.issubset(chosen.cpus)]
        assert all(c.cpus.issubset(chosen.cpus) or c.cpus.isdisjoint(chosen.cpus) for c in host.cores), (
            root.name
        )
        for node in host.nodes:
            cores = [c for c in host.cores if c.cpus and c.node == node.id]
            kept = [c for c in cores if c.cpus.isdisjoint(chosen.cpus)]
            # housekeeping never takes half of a node that has cores to spare
            assert len(cores) < 2 or 2 * len(kept) >= len(cores), (root.name, node.id)
        if chosen.why.startswith("one whole"):
            per_scope = len(host.nodes) if "NUMA node" in chosen.why else len(host.sockets)
            assert len(reserved_cores) <= MAX_CORES * per_scope, root.name
            assert len(reserved_cores) <= MAX_SHARE * len([c for c in host.cores if c.cpus]), root.name


def test_the_note_names_the_rule() -> None:
    split = reservation(host_named("phytium-s2500"), None)
    assert split.default and split.reserved == CpuSet.parse("0-3")
    assert split.why == "one whole L2 group per socket (4 cores), so no other L2 group is cut"


def test_reserve_overrides_and_isolcpus_ignore_the_default() -> None:
    given = reservation(host_named("phytium-s2500"), CpuSet.parse("0"))
    assert not given.default and given.reserved == CpuSet.parse("0") and given.why == ""
    isolated = reservation(host_named("snc2-xeon"), None)
    assert not isolated.default and isolated.isolated


@st.composite
def shapes(draw: st.DrawFn) -> Host:
    cores = draw(st.sampled_from((2, 4, 6, 8, 12, 16, 32)))
    l2 = draw(st.sampled_from([d for d in (1, 2, 4) if cores % d == 0]))
    nodes = draw(st.integers(1, 4))
    l3 = draw(
        st.sampled_from([d for d in (0, 2, 4, 8, cores, cores * nodes) if d == 0 or (cores * nodes) % d == 0])
    )
    spec = HostSpec(
        name="drawn", sockets=draw(st.integers(1, 2)), nodes_per_socket=nodes, cores_per_node=cores,
        threads_per_core=draw(st.integers(1, 2)), l2_cores=l2, l3_cores=l3,
        cache_info=draw(st.booleans()),
    )  # fmt: skip
    return host_of(spec)


@given(shapes())
@settings(max_examples=60)
def test_reserve_is_whole_cores_and_a_small_share(host: Host) -> None:
    chosen = default_reserve_of(host)
    cores = [c for c in host.cores if c.cpus]
    held = [c for c in cores if not c.cpus.isdisjoint(chosen.cpus)]
    assert held and chosen.cpus.issubset(host.online)
    assert all(c.cpus.issubset(chosen.cpus) for c in held)  # whole cores, every thread
    if chosen.why.startswith("one whole"):
        # a whole group per node or socket: no more than MAX_CORES and MAX_SHARE of each scope
        scope = (lambda c: c.node) if "NUMA node" in chosen.why else (lambda c: c.socket)
        for key in {scope(c) for c in cores}:
            mine = [c for c in held if scope(c) == key]
            total = [c for c in cores if scope(c) == key]
            assert len(mine) <= MAX_CORES and len(mine) <= MAX_SHARE * len(total)
        # and the group is whole: no group of the level named is cut
        level = int(chosen.why.split("L", 1)[1][0]) if " L" in chosen.why else None
        for group in host.groups(level) if level else ():
            assert group.cpus.issubset(chosen.cpus) or group.cpus.isdisjoint(chosen.cpus)
    else:
        assert len(held) == len({(c.node, c.socket) for c in cores})
