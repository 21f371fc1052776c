"""The sysfs fixture writer (tests/sysfsgen.py) and the named hosts in tests/data/hosts.

Each host must look like a real kernel wrote it (partitions, sibling groups, masks vs lists, meminfo sums), be
exactly what the generator writes today, agree with its capabilities XML, and, when hwloc is installed, be
counted by ``lstopo`` the way the spec says.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET  # generated and captured fixtures only, no untrusted input
from collections import Counter
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from hosts import host_of
from sysfsgen import (
    HOSTS_DIR,
    NAMED_HOSTS,
    CoreKind,
    HostSpec,
    NodeMem,
    capture,
    cpulist,
    cpumask,
    parse_cpulist,
    sysfs_files,
    write_capabilities,
    write_sysfs,
)
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.topology.model import Host, HugePages

CPU, NODE = "sys/devices/system/cpu", "sys/devices/system/node"
COMMITTED = sorted(name for name, spec in NAMED_HOSTS.items() if not spec.generated_only)
GENERATED = sorted(name for name, spec in NAMED_HOSTS.items() if spec.generated_only)
THIS = "this-machine"
ON_DISK = [*COMMITTED, *([THIS] if (HOSTS_DIR / THIS / "sys").is_dir() else [])]
ALL_ROOTS = [*ON_DISK, *GENERATED]  # checked in memory, see tree_of: writing huge-960's 43k files is slow
REGEN = "regenerate with: python tests/sysfsgen.py tests/data/hosts"

# packages, NUMA nodes, cores, PUs (online CPUs), L2 groups, L3 groups: counted by hand from hosts.toml
EXPECTED = {
    "dual-skylake-ht-interleaved": (2, 2, 20, 40, 20, 2),
    "dual-ht-adjacent": (2, 2, 16, 32, 16, 2),
    "epyc-2ccx-per-node": (1, 4, 32, 64, 32, 8),  # two CCX (L3 groups) per node
    "snc2-xeon": (2, 4, 40, 80, 40, 2),  # one L3 spans both SNC nodes of a socket
    "phytium-s2500": (1, 8, 64, 64, 16, 0),  # 4 cores per L2, no L3
    "hybrid-pe": (1, 1, 16, 24, 10, 1),  # 8 P-cores x 2 threads, 8 E-cores in 2 L2 clusters
    "offline-cpus": (2, 2, 8, 14, 8, 2),  # cpus 3 and 12 offline: their cores keep one thread
    "memoryless-node": (1, 4, 12, 24, 12, 1),  # node 2 CPU-less, node 3 memory-less
    "small-2cpu": (1, 1, 2, 2, 2, 1),
    "big-256": (4, 8, 128, 256, 128, 16),
    "huge-960": (8, 16, 480, 960, 480, 48),
    "epyc-milan-nps1": (2, 2, 128, 256, 128, 16),  # 8 CCDs (L3 groups) per socket
    "epyc-genoa-nps1": (1, 1, 96, 192, 96, 12),  # 12 CCDs
}


class Tree:
    """Every regular file (text) and symlink (target) below a root, by relative path."""

    def __init__(self, files: dict[str, str], links: dict[str, str]) -> None:
        self.files, self.links = files, links
        self.index_dirs: dict[int, set[str]] = {}  # cpu -> its cache/indexK directories
        for path in files:
            if path.startswith(f"{CPU}/cpu") and "/cache/index" in path:
                cpu = int(path.split("/")[4].removeprefix("cpu"))
                self.index_dirs.setdefault(cpu, set()).add(path.rsplit("/", 1)[0])

    def get(self, path: str) -> str:
        return self.files[path].strip()

    def cpus(self, path: str) -> set[int]:
        return set(parse_cpulist(self.get(path)))

    def online(self) -> set[int]:
        return self.cpus(f"{CPU}/online")

    def nodes(self) -> list[int]:
        return sorted(self.cpus(f"{NODE}/online"))

    def nr_cpu_ids(self) -> int:
        return max(self.cpus(f"{CPU}/possible")) + 1

    def groups(self, what: str) -> dict[int, frozenset[int]]:
        """CPU -> its group, for a topology list (``thread_siblings_list``...) or a cache level (``L2``)."""
        out = {}
        for cpu in self.online():
            if what.startswith("L"):
                found = [
                    self.cpus(f"{d}/shared_cpu_list") for d in self.cache_dirs(cpu) if self.level(d) == what
                ]
                if found:
                    out[cpu] = frozenset(found[0])
            elif f"{CPU}/cpu{cpu}/topology/{what}" in self.files:
                out[cpu] = frozenset(self.cpus(f"{CPU}/cpu{cpu}/topology/{what}"))
        return out

    def cache_dirs(self, cpu: int) -> list[str]:
        return sorted(self.index_dirs.get(cpu, ()))

    def level(self, index_dir: str) -> str:
        kind = self.get(f"{index_dir}/type")
        return f"L{self.get(f'{index_dir}/level')}" + {"Data": "d", "Instruction": "i"}.get(kind, "")

    def meminfo(self, path: str) -> dict[str, int]:
        rows = (line.split(":") for line in self.get(path).splitlines())
        return {key.split()[-1]: int(value.split()[0]) for key, value in rows}


@cache
def read_tree(root: Path) -> Tree:
    files, links = {}, {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            links[rel] = str(path.readlink())
        elif path.is_file():
            files[rel] = path.read_text()
    return Tree(files, links)


def tree_of(name: str) -> Tree:
    """A named host straight from the writer (the committed copies are compared with it byte for byte);
    this machine as captured."""
    return read_tree(HOSTS_DIR / THIS) if name == THIS else generated_tree(name)


@cache
def generated_tree(name: str) -> Tree:
    return Tree(*sysfs_files(NAMED_HOSTS[name]))


def mask_bits(text: str) -> set[int]:
    value = int(text.strip().replace(",", ""), 16)
    return {bit for bit in range(value.bit_length()) if value >> bit & 1}


# --- formats --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "nbits", "text"),
    [
        ([0], 2, "1"),
        ([0, 1], 2, "3"),  # this 2-CPU machine's package_cpus
        ([0], 40, "00,00000001"),  # the top word is only as wide as the remaining 8 bits
        ([39], 40, "80,00000000"),
        ([0, 1, 2, 3], 64, "00000000,0000000f"),
        ([4], 24, "000010"),
        # the real dual Skylake-SP dump (corpora/sysfs/hwloc-32intel64-2p8co2t+8ve: possible 0-111)
        ([*range(8), *range(16, 24)], 112, "0000,00000000,00000000,00ff00ff"),
    ],
)
def test_cpumask_prints_like_the_kernel(cpus: list[int], nbits: int, text: str) -> None:
    assert cpumask(cpus, nbits) == text
    assert mask_bits(text) == set(cpus)


@pytest.mark.parametrize(
    ("cpus", "text"),
    [([0, 1, 2, 3, 8, 10, 11], "0-3,8,10-11"), ([1, 0], "0-1"), ([5], "5"), ([], ""), ([3, 3, 1, 2], "1-3")],
)
def test_cpulist_prints_like_the_kernel_and_parses_back(cpus: list[int], text: str) -> None:
    assert cpulist(cpus) == text
    assert parse_cpulist(text) == tuple(sorted(set(cpus)))


# --- the committed fixtures are the generator's output -------------------------------------------------


def test_fixture_dirs_are_exactly_the_committed_hosts() -> None:
    dirs = {p.name for p in HOSTS_DIR.iterdir() if p.is_dir()} - {THIS}
    xmls = {p.name.removesuffix(".capabilities.xml") for p in HOSTS_DIR.glob("*.capabilities.xml")} - {THIS}
    assert dirs == xmls == set(COMMITTED), f"stale or missing fixtures; {REGEN}"


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_tree_is_what_the_generator_writes(name: str) -> None:
    files, links = sysfs_files(NAMED_HOSTS[name])
    tree = read_tree(HOSTS_DIR / name)
    assert set(tree.files) == set(files), REGEN
    assert [p for p in files if tree.files[p] != files[p]] == [], REGEN
    assert tree.links == links, REGEN
    assert (HOSTS_DIR / f"{name}.capabilities.xml").read_text() == write_capabilities(NAMED_HOSTS[name]), (
        REGEN
    )


# --- self-consistency, like a real kernel ---------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_ROOTS)
def test_present_online_offline_partition_possible(name: str) -> None:
    tree = tree_of(name)
    online, offline = tree.online(), tree.cpus(f"{CPU}/offline")
    present, possible = tree.cpus(f"{CPU}/present"), tree.cpus(f"{CPU}/possible")
    assert online | offline == possible
    assert not online & offline
    assert online <= present <= possible
    dirs = {int(p.split("/")[4].removeprefix("cpu")) for p in tree.files if p.startswith(f"{CPU}/cpu")}
    assert dirs == present


@pytest.mark.parametrize("name", ALL_ROOTS)
def test_each_online_cpu_is_in_exactly_one_node(name: str) -> None:
    tree = tree_of(name)
    seen = Counter(cpu for node in tree.nodes() for cpu in tree.cpus(f"{NODE}/node{node}/cpulist"))
    assert set(seen) == tree.online()
    assert set(seen.values()) == {1}
    has_cpu = {node for node in tree.nodes() if tree.cpus(f"{NODE}/node{node}/cpulist")}
    assert tree.cpus(f"{NODE}/has_cpu") == has_cpu


@pytest.mark.parametrize("name", ALL_ROOTS)
def test_offline_cpus_keep_only_their_online_file(name: str) -> None:
    tree = tree_of(name)
    offline = tree.cpus(f"{CPU}/present") - tree.online()
    for cpu in offline:
        assert [p for p in tree.files if p.startswith(f"{CPU}/cpu{cpu}/")] == [f"{CPU}/cpu{cpu}/online"]
        assert tree.get(f"{CPU}/cpu{cpu}/online") == "0"
    mentioned = {
        cpu for path, text in tree.files.items() if path.endswith("_list") for cpu in parse_cpulist(text)
    }
    assert not mentioned & offline, "offline CPUs must vanish from every sibling and cache list"


GROUPS = ["thread_siblings_list", "core_cpus_list", "cluster_cpus_list", "die_cpus_list", "package_cpus_list"]


@pytest.mark.parametrize("name", ALL_ROOTS)
def test_sibling_and_cache_groups_are_consistent_and_nested(name: str) -> None:
    tree = tree_of(name)
    groups = {what: tree.groups(what) for what in [*GROUPS, "core_siblings_list", "L1d", "L1i", "L2", "L3"]}
    for what, of in groups.items():
        for cpu, group in of.items():
            assert cpu in group, (what, cpu)
            assert all(of[other] == group for other in group), f"{what}: cpu{cpu} and its group disagree"
    assert groups["thread_siblings_list"] == groups["core_cpus_list"] == groups["L1d"]
    assert groups["core_siblings_list"] == groups["package_cpus_list"]
    for small, big in [("thread_siblings_list", "L2"), ("L2", "L3"), ("L3", "package_cpus_list")]:
        assert all(group <= groups[big][cpu] for cpu, group in groups[small].items() if cpu in groups[big])


@pytest.mark.parametrize("name", ALL_ROOTS)
def test_every_mask_agrees_with_its_list(name: str) -> None:
    tree = tree_of(name)
    nbits = tree.nr_cpu_ids()
    width = (nbits + 31) // 32 * 9 - 1 - (32 - (nbits % 32 or 32)) // 4  # 8 digits + comma per word
    pairs = [(p.removesuffix("_list"), p) for p in tree.files if p.endswith("_list") and "/topology/" in p]
    pairs += [(p.replace("cpulist", "cpumap"), p) for p in tree.files if p.endswith("/cpulist")]
    pairs += [(p.replace("_list", "_map"), p) for p in tree.files if p.endswith("/shared_cpu_list")]
    assert pairs
    for mask, listed in pairs:
        assert mask_bits(tree.get(mask)) == tree.cpus(listed), mask
        assert len(tree.get(mask)) == width, f"{mask} is not {nbits} bits wide"


@pytest.mark.parametrize("name", ALL_ROOTS)
def test_node_distances_are_a_slit(name: str) -> None:
    tree = tree_of(name)
    nodes = tree.nodes()
    rows = [[int(d) for d in tree.get(f"{NODE}/node{n}/distance").split()] for n in nodes]
    assert all(len(row) == len(nodes) for row in rows)
    for i, row in enumerate(rows):
        assert row[i] == 10
        assert all(row[j] == rows[j][i] and (i == j or row[j] > 10) for j in range(len(nodes)))


@pytest.mark.parametrize("name", ALL_ROOTS)
def test_meminfo_and_hugepage_counts_add_up(name: str) -> None:
    tree = tree_of(name)
    sizes = sorted({p.split("/")[4] for p in tree.files if p.startswith("sys/kernel/mm/hugepages/")})
    totals = Counter[str]()
    for node in tree.nodes():
        mem = tree.meminfo(f"{NODE}/node{node}/meminfo")
        assert mem["MemUsed"] == mem["MemTotal"] - mem["MemFree"]
        assert mem["HugePages_Free"] <= mem["HugePages_Total"]
        assert mem["HugePages_Total"] == int(
            tree.get(f"{NODE}/node{node}/hugepages/hugepages-2048kB/nr_hugepages")
        )
        for size in sizes:
            for count in ("nr_hugepages", "free_hugepages"):
                totals[f"{size}/{count}"] += int(tree.get(f"{NODE}/node{node}/hugepages/{size}/{count}"))
        totals["MemTotal"] += mem["MemTotal"]
    for key, total in totals.items():
        if key != "MemTotal":
            assert int(tree.get(f"sys/kernel/mm/hugepages/{key}")) == total, key
    proc = tree.meminfo("proc/meminfo")
    assert proc["HugePages_Total"] == totals["hugepages-2048kB/nr_hugepages"]
    if name != THIS:  # a real VM's nodes can hold less than MemTotal (memory hotplug, balloon)
        assert proc["MemTotal"] == totals["MemTotal"]


# --- each host is the machine its name promises ------------------------------------------------------------


def counts(tree: Tree) -> tuple[int, ...]:
    online = tree.online()
    packages = {tree.get(f"{CPU}/cpu{c}/topology/physical_package_id") for c in online}
    cores = set(tree.groups("thread_siblings_list").values())
    l2, l3 = set(tree.groups("L2").values()), set(tree.groups("L3").values())
    return len(packages), len(tree.nodes()), len(cores), len(online), len(l2), len(l3)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_match_the_hand_written_table(name: str) -> None:
    assert counts(tree_of(name)) == EXPECTED[name]


QUIRKS = [
    ("dual-skylake-ht-interleaved", f"{CPU}/cpu1/topology/thread_siblings_list", "1,21"),
    ("dual-skylake-ht-interleaved", f"{CPU}/cpu21/topology/package_cpus", "00,3ff003ff"),
    ("dual-ht-adjacent", f"{CPU}/cpu1/topology/thread_siblings_list", "0-1"),
    ("epyc-2ccx-per-node", f"{CPU}/cpu0/topology/thread_siblings_list", "0,32"),
    ("epyc-2ccx-per-node", f"{CPU}/cpu36/cache/index3/shared_cpu_list", "4-7,36-39"),
    ("epyc-2ccx-per-node", f"{NODE}/node0/cpulist", "0-7,32-39"),
    ("snc2-xeon", f"{NODE}/node0/cpulist", "0-9,40-49"),
    ("snc2-xeon", f"{CPU}/cpu0/cache/index3/shared_cpu_list", "0-19,40-59"),
    ("snc2-xeon", f"{NODE}/node0/distance", "10 11 21 21"),
    ("snc2-xeon", f"{CPU}/isolated", "2-19,42-59"),
    ("snc2-xeon", f"{CPU}/nohz_full", "2-19,42-59"),
    ("phytium-s2500", f"{CPU}/cpu0/online", "1"),  # arm64 can offline cpu0
    ("phytium-s2500", f"{CPU}/cpu5/topology/cluster_cpus_list", "4-7"),
    ("phytium-s2500", f"{CPU}/cpu5/cache/index2/shared_cpu_list", "4-7"),
    ("phytium-s2500", f"{NODE}/node2/distance", "30 30 10 20 30 30 30 30"),
    ("hybrid-pe", f"{CPU}/cpu1/topology/thread_siblings_list", "0-1"),
    ("hybrid-pe", f"{CPU}/cpu17/topology/thread_siblings_list", "17"),
    ("hybrid-pe", f"{CPU}/cpu17/topology/cluster_cpus_list", "16-19"),
    ("hybrid-pe", f"{CPU}/cpu17/cache/index2/shared_cpu_list", "16-19"),
    ("hybrid-pe", f"{CPU}/cpu15/cpu_capacity", "1024"),
    ("hybrid-pe", f"{CPU}/cpu16/cpu_capacity", "600"),
    ("hybrid-pe", "sys/devices/cpu_atom/cpus", "16-23"),
    ("offline-cpus", f"{CPU}/offline", "3,12,16-23"),  # possible-but-absent CPUs are "offline" too
    ("offline-cpus", f"{CPU}/cpu11/topology/thread_siblings_list", "11"),  # partner of offline cpu3
    ("offline-cpus", f"{CPU}/cpu4/topology/thread_siblings", "000010"),  # partner of cpu12; 24-bit mask
    ("memoryless-node", f"{NODE}/has_cpu", "0-1,3"),
    ("memoryless-node", f"{NODE}/has_memory", "0-2"),
    ("memoryless-node", f"{NODE}/node2/cpulist", ""),
    ("memoryless-node", f"{NODE}/node3/cpulist", "16-23"),
    ("small-2cpu", f"{CPU}/cpu1/topology/core_siblings", "3"),
]


@pytest.mark.parametrize(("name", "path", "text"), QUIRKS)
def test_host_quirks(name: str, path: str, text: str) -> None:
    assert tree_of(name).get(path) == text


ABSENT = [
    ("dual-skylake-ht-interleaved", f"{CPU}/cpu0/online"),  # x86 cpu0 is not hotpluggable
    ("dual-skylake-ht-interleaved", f"{CPU}/nohz_full"),  # kernel without CONFIG_NO_HZ_FULL
    ("dual-skylake-ht-interleaved", f"{CPU}/cpu0/cpu_capacity"),
    ("phytium-s2500", f"{CPU}/cpu0/topology/die_id"),  # no TOPOLOGY_DIE_SYSFS on arm64
    ("phytium-s2500", f"{CPU}/cpu0/cache/index3/level"),  # no L3
    ("offline-cpus", f"{CPU}/cpu3/topology/core_id"),
    ("offline-cpus", f"{CPU}/cpu12/cache/index0/level"),
]


@pytest.mark.parametrize(("name", "path"), ABSENT)
def test_host_absences(name: str, path: str) -> None:
    assert path not in tree_of(name).files


def test_memoryless_node_has_cpus_but_no_memory() -> None:
    tree = tree_of("memoryless-node")
    assert tree.meminfo(f"{NODE}/node3/meminfo")["MemTotal"] == 0
    assert tree.meminfo(f"{NODE}/node2/meminfo")["MemTotal"] > 0


# --- the test host factory: the same machine as its sysfs -------------------------------------------------

GIB = 1024 * 1024
# the HostSpec fields no named host uses, each as the hand-built test hosts use them
FACTORY_ONLY = {
    "node-mem-cpuless": HostSpec(
        name="node-mem-cpuless",
        sockets=2,
        nodes_per_socket=2,
        cores_per_node=3,
        threads_per_core=2,
        l3_cores=6,
        offline=(1, 8),
        cpuless_nodes=(4,),
        node_mem={0: NodeMem(16 * GIB, 12 * GIB, {2048: (512, 500)}), 4: NodeMem(64 * GIB, 64 * GIB, {})},
        distances=tuple(tuple(10 if a == b else 40 if a == 4 else 21 for b in range(5)) for a in range(5)),
        isolated=(3, 4),
        nohz_full=(3, 4),
    ),
    "no-hugetlb": HostSpec(name="no-hugetlb", sockets=2, cores_per_node=4, threads_per_core=2, hugetlb=False),
    "no-cache-info": HostSpec(
        name="no-cache-info",
        cores_per_node=4,
        threads_per_core=2,
        sibling_numbering="interleaved",
        cache_info=False,
        node_mem={0: NodeMem(64 * GIB, 48 * GIB, {2048: (4096, 4096), GIB: (16, 16)})},
    ),
}


def as_factory_builds(host: Host) -> Host:
    """The reader's Host less what the factory leaves out: the root's name, arch and vendor (not in sysfs),
    and the raw die, cluster and cache ids."""
    cpus = tuple(replace(c, die_id=None, cluster_id=None) for c in host.cpus)
    caches = tuple(replace(g, cache_id=None) for g in host.caches)
    return replace(host, name="", cpus=cpus, caches=caches, arch=None, vendor=None)


@pytest.mark.parametrize("name", COMMITTED)
def test_factory_builds_what_the_reader_reads_from_the_committed_tree(name: str) -> None:
    expected = replace(host_of(NAMED_HOSTS[name]), name="", arch=None, vendor=None)
    assert as_factory_builds(read_sysfs(HOSTS_DIR / name)) == expected


@pytest.mark.parametrize("name", sorted(FACTORY_ONLY))
def test_factory_only_fields_are_written_and_built_alike(name: str, tmp_path: Path) -> None:
    spec = FACTORY_ONLY[name]
    write_sysfs(spec, tmp_path)
    expected = replace(host_of(spec), name="", arch=None, vendor=None)
    assert as_factory_builds(read_sysfs(tmp_path)) == expected


def test_factory_only_fields_show_in_the_host() -> None:
    cpuless, bare, uncached = (
        host_of(FACTORY_ONLY[n]) for n in ("node-mem-cpuless", "no-hugetlb", "no-cache-info")
    )
    node0, node4 = cpuless.node(0), cpuless.node(4)
    assert node0 is not None and node4 is not None and not node4.cpus
    assert (node0.mem_free_kib, node0.hugepages_of(2048)) == (
        12 * GIB,
        HugePages(size_kib=2048, total=512, free=500),
    )
    assert (node4.mem_total_kib, node4.hugepages_of(2048), node4.distance_to(0), node0.distance_to(4)) == (
        64 * GIB,
        HugePages(size_kib=2048, total=0, free=0),
        40,
        21,
    )
    assert all(not n.hugepages for n in bare.nodes) and bare.caches
    assert not uncached.caches and all(not c.caches for c in uncached.cores)


# --- capabilities XML: the same machine as its sysfs ------------------------------------------------------


@pytest.mark.parametrize("name", ON_DISK)
def test_capabilities_agree_with_sysfs(name: str) -> None:
    tree, host = read_tree(HOSTS_DIR / name), ET.parse(HOSTS_DIR / f"{name}.capabilities.xml").getroot()
    cells = host.findall("host/topology/cells/cell")
    assert [int(cell.get("id", -1)) for cell in cells] == tree.nodes()
    for cell in cells:
        node = f"{NODE}/node{cell.get('id')}"
        cpus = cell.findall("cpus/cpu")
        assert {int(c.get("id", -1)) for c in cpus} == tree.cpus(f"{node}/cpulist")  # offline CPUs left out
        for c in cpus:
            topo = f"{CPU}/cpu{c.get('id')}/topology"
            assert c.get("siblings") == tree.get(f"{topo}/thread_siblings_list")
            assert c.get("socket_id") == tree.get(f"{topo}/physical_package_id")
            assert c.get("core_id") == tree.get(f"{topo}/core_id")
            assert c.get("cluster_id") in (None, tree.get(f"{topo}/cluster_id"))
        assert [s.get("value") for s in cell.findall("distances/sibling")] == tree.get(
            f"{node}/distance"
        ).split()
        if name != THIS:  # the VM's memory moved between the sysfs snapshot and virsh
            assert int(cell.findtext("memory", "")) == tree.meminfo(f"{node}/meminfo")["MemTotal"]
            pages = {p.get("size"): int(p.text or "") for p in cell.findall("pages")}
            assert pages["2048"] == int(tree.get(f"{node}/hugepages/hugepages-2048kB/nr_hugepages"))
    banks = {b.get("cpus", ""): b for b in host.findall("host/cache/bank")}
    assert set(banks) == {cpulist(group) for group in tree.groups("L3").values()}  # libvirt lists only L3
    units = {"KiB": 1, "MiB": 1024, "GiB": 1024 * 1024}
    for members, bank in banks.items():
        index = next(d for d in tree.cache_dirs(min(parse_cpulist(members))) if tree.level(d) == "L3")
        assert int(bank.get("size", "")) * units[bank.get("unit", "")] == int(
            tree.get(f"{index}/size").rstrip("K")
        )


def shape(element: ET.Element, path: str) -> set[str]:
    return {name for e in element.findall(path) for name in e.attrib}


def test_capabilities_have_the_shape_of_real_libvirt_output() -> None:
    """Real libvirt 9.0 output (this machine) vs the generator asked for the 9.0 shape (no clusters)."""
    real_path = HOSTS_DIR / f"{THIS}.capabilities.xml"
    if not real_path.is_file():
        pytest.skip("no captured virsh capabilities")
    real = ET.parse(real_path).getroot()
    ours = ET.fromstring(write_capabilities(NAMED_HOSTS["small-2cpu"], clusters=False))
    for path in ["host/cpu/topology", "host/topology/cells/cell/cpus/cpu", "host/topology/cells/cell/pages"]:
        assert shape(ours, path) == shape(real, path), path
    for path in ["host/cache/bank", "host/topology/cells/cell/distances/sibling"]:
        assert shape(ours, path) == shape(real, path), path
    newer = ET.fromstring(write_capabilities(NAMED_HOSTS["small-2cpu"]))
    assert shape(newer, "host/topology/cells/cell/cpus/cpu") - shape(
        ours, "host/topology/cells/cell/cpus/cpu"
    ) == {"cluster_id"}


# virHostCPUGetInfoPopulateLinux: sockets per NUMA node; 1 x CPUs x 1 when nodes*sockets*cores*threads != CPUs
LIBVIRT_TOPOLOGY = {
    "dual-skylake-ht-interleaved": ("1", "10", "2"),
    "snc2-xeon": ("1", "10", "2"),
    "epyc-2ccx-per-node": ("1", "8", "2"),
    "phytium-s2500": ("1", "8", "1"),
    "offline-cpus": ("1", "4", "2"),  # offline CPUs still count through the nodeN/cpuM links
    "hybrid-pe": ("1", "24", "1"),  # 16 cores x 2 threads != 24 CPUs
    "memoryless-node": ("1", "24", "1"),  # 4 nodes (one CPU-less) x 4 cores x 2 != 24
}


@pytest.mark.parametrize("name", sorted(LIBVIRT_TOPOLOGY))
def test_capabilities_host_topology_follows_libvirt(name: str) -> None:
    topo = ET.fromstring(write_capabilities(NAMED_HOSTS[name])).find("host/cpu/topology")
    assert topo is not None
    assert (topo.get("sockets"), topo.get("cores"), topo.get("threads")) == LIBVIRT_TOPOLOGY[name]


# --- the spec and capture() --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"cores_per_node": 4, "kinds": ()}, None),
        ({"cores_per_node": 6, "l2_cores": 4}, "L2 group would straddle"),
        ({"cores_per_node": 8, "l3_cores": 3}, "L3 group would straddle"),
        ({"offline": (8,)}, "absent CPUs"),
        ({"possible_cpus": 2}, "absent CPUs"),
        ({"offline": (0,)}, "cpu0"),
        ({"cpuless_nodes": (5,)}, "node ids"),
        ({"kinds": (CoreKind(2), CoreKind(1))}, "add up"),
        ({"node_mem": {1: NodeMem(1, 1, {})}}, "node ids"),
        ({"hugetlb": False, "hugepages": {2048: (1, 1)}}, "without hugetlb"),
        ({"hugetlb": False, "node_mem": {0: NodeMem(4, 2, {2048: (1, 1)})}}, "without hugetlb"),
    ],
)
def test_spec_validation(changes: dict[str, Any], problem: str | None) -> None:
    fields: dict[str, Any] = {"name": "t", "cores_per_node": 4, "threads_per_core": 2} | changes
    if problem is None:
        assert HostSpec(**fields).cpu_count() == 8
    else:
        with pytest.raises(ValueError, match=problem):
            HostSpec(**fields)


def test_capture_copies_what_the_writer_writes_and_nothing_else(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_sysfs(NAMED_HOSTS["offline-cpus"], src)
    (src / "proc/cmdline").write_text("BOOT_IMAGE=/vmlinuz ro isolcpus=2-3 -- --init-flag secret\n")
    (src / f"{CPU}/cpu0/cpufreq").mkdir()
    (src / f"{CPU}/cpu0/cpufreq/scaling_governor").write_text("performance\n")
    (src / f"{CPU}/cpu0/node0").symlink_to("../../node/node0")  # real kernels have it; capture skips it
    copied = capture(src, dst)
    before, after = read_tree(src), read_tree(dst)
    assert after.files.pop("proc/cmdline") == "BOOT_IMAGE=/vmlinuz ro isolcpus=2-3\n"
    assert after.files == {
        p: t for p, t in before.files.items() if "cpufreq" not in p and p != "proc/cmdline"
    }
    assert after.links == {p: t for p, t in before.links.items() if not p.endswith("/node0")}
    assert sorted(copied) == sorted([*after.files, *after.links, "proc/cmdline"])


# --- hwloc's view ------------------------------------------------------------------------------------------

HWLOC_TYPES = ("Package", "NUMANode", "Core", "PU", "L2Cache", "L3Cache")


def lstopo_xml(root: Path) -> ET.Element:
    lstopo = shutil.which("lstopo") or shutil.which("lstopo-no-graphics")
    if lstopo is None:
        pytest.skip("lstopo (Debian package hwloc) is not installed")
    done = subprocess.run([lstopo, "--input", str(root), "--of", "xml", "-"], capture_output=True, check=True)
    return ET.fromstring(done.stdout)


@pytest.mark.parametrize("name", ON_DISK)
def test_lstopo_counts_what_the_fixture_says(name: str) -> None:
    found = Counter(obj.get("type") for obj in lstopo_xml(HOSTS_DIR / name).iter("object"))
    expected = EXPECTED.get(name) or counts(tree_of(name))
    assert tuple(found[t] for t in HWLOC_TYPES) == expected


@pytest.mark.parametrize("name", ON_DISK)
def test_lstopo_sees_the_same_cpus_and_distances(name: str) -> None:
    tree, xml = tree_of(name), lstopo_xml(HOSTS_DIR / name)
    assert {int(o.get("os_index", -1)) for o in xml.iter("object") if o.get("type") == "PU"} == tree.online()
    matrix = xml.find("distances2[@name='NUMALatency']")
    if len(tree.nodes()) > 1:
        assert matrix is not None
        order = [int(i) for row in matrix.findall("indexes") for i in (row.text or "").split()]  # os indexes
        values = [int(v) for row in matrix.findall("u64values") for v in (row.text or "").split()]
        rows = {n: tree.get(f"{NODE}/node{n}/distance").split() for n in tree.nodes()}
        position = {n: i for i, n in enumerate(tree.nodes())}
        assert values == [int(rows[a][position[b]]) for a in order for b in order]


def test_lstopo_sees_two_cpu_kinds_on_the_hybrid_host() -> None:
    kinds = lstopo_xml(HOSTS_DIR / "hybrid-pe").findall("cpukind")
    capacity = {
        k.get("cpuset"): i.get("value") for k in kinds for i in k.findall("info[@name='LinuxCapacity']")
    }
    assert capacity == {"0x0000ffff": "1024", "0x00ff0000": "600"}
