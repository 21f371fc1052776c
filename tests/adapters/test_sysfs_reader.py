"""sysfs reader over the named hosts (tests/data/hosts, written by tests/sysfsgen.py), quirks, bad input.

Each named host is read from its committed tree when present, otherwise generated into a tmp dir from
the same spec, so the tests run before and after the fixtures are committed.
"""

from __future__ import annotations

import shutil
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from testutil import REPO
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.topology.build import CacheRecord, CpuRecord, NodeRecord, build_host
from vmtune.core.topology.model import Host, Summary
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

HOSTS = REPO / "tests" / "data" / "hosts"
sys.path.insert(0, str(REPO / "tests"))
import sysfsgen  # noqa: E402

# sockets, numa_nodes, cores, threads, threads_per_core, l2_groups, l3_groups
EXPECTED: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "dual-skylake-ht-interleaved": (2, 2, 20, 40, 2, 20, 2),
    "dual-ht-adjacent": (2, 2, 16, 32, 2, 16, 2),
    "epyc-2ccx-per-node": (1, 4, 32, 64, 2, 32, 8),  # two CCX (L3 groups) per node
    "snc2-xeon": (2, 4, 40, 80, 2, 40, 2),  # one L3 spans the two SNC nodes of a socket
    "phytium-s2500": (1, 8, 64, 64, 1, 16, 0),  # 4 cores per L2, no L3
    "hybrid-pe": (1, 1, 16, 24, 2, 10, 1),  # 8 P-cores x2 + 8 E-cores in 2 L2 clusters
    "offline-cpus": (2, 2, 8, 14, 2, 8, 2),  # 3 and 12 offline: two 1-thread cores
    "memoryless-node": (1, 4, 12, 24, 2, 12, 1),  # node 2 CPU-less, node 3 memory-less
    "small-2cpu": (1, 1, 2, 2, 1, 2, 1),
}


def host_root(name: str, tmp: Path) -> Path:
    committed = HOSTS / name
    if (committed / "sys").is_dir():
        return committed
    root = tmp / name
    if not root.exists():
        sysfsgen.write_sysfs(sysfsgen.NAMED_HOSTS[name], root)
    return root


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hosts")


@pytest.fixture(scope="module")
def hosts(gen_dir: Path) -> dict[str, Host]:
    return {name: read_sysfs(host_root(name, gen_dir)) for name in EXPECTED}


def as_tuple(s: Summary) -> tuple[int, ...]:
    return (
        s.sockets,
        s.numa_nodes,
        s.cores,
        s.threads,
        s.threads_per_core,
        s.cache_groups[2],
        s.cache_groups[3],
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_host_summary(hosts: dict[str, Host], name: str) -> None:
    assert as_tuple(hosts[name].summary()) == EXPECTED[name]
    assert hosts[name].warnings == ()


def test_model_invariants_on_every_named_host(hosts: dict[str, Host]) -> None:
    for name, host in hosts.items():
        online = host.online
        # cores, sockets and nodes partition the online CPUs; cache groups of one level are disjoint
        for label, parts in (
            ("cores", [c.cpus for c in host.cores]),
            ("sockets", [s.cpus for s in host.sockets]),
            ("nodes", [n.cpus for n in host.nodes]),
        ):
            assert CpuSet().union(*parts) == online, (name, label)
            assert sum(len(p) for p in parts) == len(online), (name, label)
        for level in (2, 3):
            groups = [g.cpus for g in host.groups(level)]
            assert sum(len(g) for g in groups) == len(CpuSet().union(*groups)), (name, level)
        for core in host.cores:
            assert host.cores[core.index] is core
            assert core.cpus.issubset(host.sockets[core.socket].cpus), name
            for cpu in core.cpus:
                assert host.cpu(cpu) is not None and host.cpu(cpu).core == core.index  # type: ignore[union-attr]
        for cpu in host.cpus:
            if not cpu.online:
                assert cpu.core == -1 and cpu.socket == -1 and cpu.caches.get(2) is None, name
        for i, group in enumerate(host.caches):
            assert group.index == i


def test_interleaved_vs_adjacent_siblings(hosts: dict[str, Host]) -> None:
    inter = hosts["dual-skylake-ht-interleaved"]
    assert inter.siblings(0) == CpuSet([0, 20])
    assert inter.siblings(39) == CpuSet([19, 39])
    adj = hosts["dual-ht-adjacent"]
    assert adj.siblings(0) == CpuSet([0, 1])
    assert adj.siblings(17) == CpuSet([16, 17])
    assert adj.cpu(17).socket == 1  # type: ignore[union-attr]


def test_memory_hugepages_distances_cmdline(hosts: dict[str, Host]) -> None:
    sky = hosts["dual-skylake-ht-interleaved"]
    node0 = sky.node(0)
    assert node0 is not None
    assert node0.mem_total_kib == 100663296
    assert node0.hugepages_of(2048) is not None and node0.hugepages_of(2048).total == 512  # type: ignore[union-attr]
    assert node0.hugepages_of(1048576).free == 4  # type: ignore[union-attr]
    assert node0.distance_to(0) == 10 and node0.distance_to(1) == 21
    assert sky.cmdline is not None and "intel_iommu=on" in sky.cmdline
    assert sky.memory_total_kib == 2 * 100663296
    phy = hosts["phytium-s2500"]
    assert phy.node(2).distance_to(3) == 20  # type: ignore[union-attr]
    assert phy.node(0).distance_to(7) == 30  # type: ignore[union-attr]
    assert phy.arch in (None, "aarch64")


def test_isolated_and_nohz_full(hosts: dict[str, Host]) -> None:
    snc = hosts["snc2-xeon"]
    assert snc.isolated == CpuSet.parse("2-19,42-59")
    assert snc.nohz_full == CpuSet.parse("2-19,42-59")
    assert hosts["small-2cpu"].isolated == CpuSet()


def test_offline_cpus(hosts: dict[str, Host]) -> None:
    host = hosts["offline-cpus"]
    assert host.offline == CpuSet([3, 12])
    assert host.cpu(3) is not None and host.cpu(3).core == -1  # type: ignore[union-attr]
    # a core whose sibling is offline keeps one thread
    assert len(host.siblings(11)) == 1
    assert host.node_of(3) is None


def test_cpuless_and_memoryless_nodes(hosts: dict[str, Host]) -> None:
    host = hosts["memoryless-node"]
    assert [n.id for n in host.nodes] == [0, 1, 2, 3]
    assert host.node(2).cpus == CpuSet()  # type: ignore[union-attr]
    assert (host.node(2).mem_total_kib or 0) > 0  # type: ignore[union-attr]
    assert host.node(3).mem_total_kib == 0  # type: ignore[union-attr]
    assert host.node(3).cpus  # type: ignore[union-attr]


def test_hybrid_capacity(hosts: dict[str, Host]) -> None:
    host = hosts["hybrid-pe"]
    caps = {c.capacity for c in host.cores}
    assert caps == {1024, 600}
    e_l2 = [g for g in host.groups(2) if len(g.cpus) == 4]
    assert len(e_l2) == 2


# -- quirks on hand-made trees ------------------------------------------------------------------------
def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CPU = "sys/devices/system/cpu"
NODE = "sys/devices/system/node"


def test_no_node_dir_uses_proc_meminfo(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            f"{CPU}/online": "0-1\n",
            f"{CPU}/cpu0/topology/core_cpus_list": "0\n",
            f"{CPU}/cpu1/topology/core_cpus_list": "1\n",
            "proc/meminfo": "MemTotal:        8000 kB\nMemFree:         4000 kB\n",
            "proc/cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu lm\n",
        },
    )
    host = read_sysfs(root)
    assert [n.id for n in host.nodes] == [0]
    assert host.nodes[0].cpus == CpuSet([0, 1]) and host.nodes[0].mem_total_kib == 8000
    assert host.vendor == "Intel"
    assert host.summary().cores == 2


def test_masks_only_nul_padding_and_sparse_nodes(tmp_path: Path) -> None:
    wide = ",".join(["00000000"] * 31) + ",000000{:02x}"
    files = {
        f"{NODE}/online": "0,4\n",
        f"{NODE}/node0/cpumap": wide.format(0x03) + "\n\x00\x00",
        f"{NODE}/node0/distance": "10 20\n",
        f"{NODE}/node4/cpumap": wide.format(0x0C) + "\n",
        f"{NODE}/node4/distance": "20 10\n",
    }
    for cpu in range(4):
        files[f"{CPU}/cpu{cpu}/topology/thread_siblings"] = wide.format(1 << cpu)
        files[f"{CPU}/cpu{cpu}/topology/core_siblings"] = wide.format(0x3 if cpu < 2 else 0xC)
        files[f"{CPU}/cpu{cpu}/topology/physical_package_id"] = "-1\n"
    host = read_sysfs(write(tmp_path, files))
    assert host.summary() == Summary(
        sockets=2, numa_nodes=2, cores=4, threads=4, threads_per_core=1, cache_groups={2: 0, 3: 0}
    )
    assert host.node(4).distance_to(0) == 20  # type: ignore[union-attr]  # positional rows, sparse ids
    assert host.node_of(3) == 4


def test_equal_core_id_is_not_smt_when_siblings_missing(tmp_path: Path) -> None:
    """libvirt-test3 trap: core_id repeats on both dies of a package; the node separates them."""
    files = {}
    for cpu in range(4):
        files[f"{CPU}/cpu{cpu}/topology/core_id"] = str(cpu % 2)
        files[f"{CPU}/cpu{cpu}/topology/physical_package_id"] = "0"
    for node, cpus in ((0, (0, 1)), (1, (2, 3))):
        files[f"{NODE}/node{node}/cpulist"] = ",".join(map(str, cpus))
    host = read_sysfs(write(tmp_path, files))
    assert host.summary().cores == 4 and host.summary().threads_per_core == 1


def test_online_wider_than_cpu_dirs_and_cpu0_offline(tmp_path: Path) -> None:
    files = {f"{CPU}/online": "1-223\n", f"{CPU}/cpu0/online": "0\n"}
    for cpu in range(1, 4):
        files[f"{CPU}/cpu{cpu}/topology/core_cpus_list"] = str(cpu)
    host = read_sysfs(write(tmp_path, files))
    assert host.online == CpuSet([1, 2, 3])
    assert host.offline == CpuSet([0])
    assert len(host.cpus) == 4


def test_buggy_bios_every_node_lists_every_cpu(tmp_path: Path) -> None:
    files = {f"{NODE}/node{n}/cpulist": "0-3" for n in range(4)}
    for cpu in range(4):
        files[f"{CPU}/cpu{cpu}/topology/core_cpus_list"] = str(cpu)
    host = read_sysfs(write(tmp_path, files))
    assert [n.id for n in host.nodes] == [0]
    assert any("buggy" in w for w in host.warnings)


def test_node_membership_from_cpu_links(tmp_path: Path) -> None:
    files = {f"{CPU}/cpu{c}/topology/core_cpus_list": str(c) for c in range(4)}
    root = write(tmp_path, files)
    for node, cpus in ((0, (0, 1)), (1, (2, 3))):
        (root / NODE / f"node{node}").mkdir(parents=True)
        for c in cpus:
            (root / NODE / f"node{node}" / f"cpu{c}").symlink_to(f"../../cpu/cpu{c}")
    host = read_sysfs(root)
    assert host.node(1).cpus == CpuSet([2, 3])  # type: ignore[union-attr]


# -- shortcuts: later CPUs are read only as far as earlier CPUs' masks leave them unknown -----------------
@pytest.mark.parametrize("name", [*sorted(EXPECTED), "big-256"])
def test_shortcuts_equal_exhaustive_read(gen_dir: Path, name: str) -> None:
    root = host_root(name, gen_dir)
    assert read_sysfs(root) == read_sysfs(root, exhaustive=True)


def two_packages(*, threads: int = 1) -> dict[str, str]:
    """2 packages x 2 cores x ``threads``, L2 per core, L3 per package, ids as the kernel writes them."""
    n = 4 * threads
    files = {f"{CPU}/online": f"0-{n - 1}\n"}
    for cpu in range(n):
        core, pkg = cpu // threads, cpu // (2 * threads)
        core_cpus = f"{core * threads}-{core * threads + threads - 1}" if threads > 1 else str(cpu)
        pkg_cpus = f"{pkg * 2 * threads}-{pkg * 2 * threads + 2 * threads - 1}"
        t, c = f"{CPU}/cpu{cpu}/topology", f"{CPU}/cpu{cpu}/cache"
        files |= {
            f"{t}/core_cpus_list": core_cpus,
            f"{t}/package_cpus_list": pkg_cpus,
            f"{t}/physical_package_id": str(pkg),
            f"{t}/core_id": str(core % 2),
        }
        for idx, (level, kind, shared, size) in enumerate(
            ((1, "Data", core_cpus, "48K"), (1, "Instruction", core_cpus, "32K"),
             (2, "Unified", core_cpus, "2048K"), (3, "Unified", pkg_cpus, "32768K"))
        ):  # fmt: skip
            files |= {
                f"{c}/index{idx}/level": str(level),
                f"{c}/index{idx}/type": kind,
                f"{c}/index{idx}/shared_cpu_list": shared,
                f"{c}/index{idx}/size": size,
                f"{c}/index{idx}/id": str(core if level < 3 else pkg),
            }
    return files


def read_both(root: Path) -> tuple[Host, Host]:
    return read_sysfs(root), read_sysfs(root, exhaustive=True)


def test_later_cpu_without_topology_is_read_in_full(tmp_path: Path) -> None:
    root = write(tmp_path, two_packages())
    shutil.rmtree(root / CPU / "cpu3" / "topology")
    fast, full = read_both(root)
    assert fast == full
    assert fast.cpu(3).core_id is None and any("CPUs 3 report no topology" in w for w in fast.warnings)  # type: ignore[union-attr]


def test_asymmetric_cache_dirs(tmp_path: Path) -> None:
    """hwloc-8em64t-2s4c-asymcaches: some CPUs have only L1 index dirs, others only the L2 one."""
    root = write(tmp_path, two_packages())
    for idx in (2, 3):
        shutil.rmtree(root / CPU / "cpu0" / "cache" / f"index{idx}")
    for idx in (0, 1):
        shutil.rmtree(root / CPU / "cpu1" / "cache" / f"index{idx}")
    fast, full = read_both(root)
    assert fast == full
    assert fast.cpu(0).caches.get(2) is None and fast.cpu(1).caches.get(2) is not None  # type: ignore[union-attr]


def test_cache_layout_is_per_kind_of_cpu(tmp_path: Path) -> None:
    """Little cores (another cpu_capacity) may number their index dirs differently: no L2, index2 is L3."""
    files = two_packages()
    for cpu in range(4):
        files[f"{CPU}/cpu{cpu}/cpu_capacity"] = "1024" if cpu < 2 else "512"
    for cpu in (2, 3):
        files[f"{CPU}/cpu{cpu}/cache/index2/level"] = "3"
        files[f"{CPU}/cpu{cpu}/cache/index2/shared_cpu_list"] = "2-3"
    fast, full = read_both(write(tmp_path, files))
    assert fast == full
    assert len(fast.groups(2)) == 2 and fast.cpu(2).caches.get(2) is None and fast.cpu(2).capacity == 512  # type: ignore[union-attr]


def test_package_mask_is_taken_only_with_the_same_id(tmp_path: Path) -> None:
    """libvirt-high-ids is hand-edited: cpu0's package mask covers CPUs that report another id and mask."""
    files = two_packages()
    files[f"{CPU}/cpu0/topology/package_cpus_list"] = "0-3"
    files[f"{CPU}/cpu1/topology/package_cpus_list"] = "0-3"
    fast, full = read_both(write(tmp_path, files))
    assert fast == full
    assert len(fast.sockets) == 2


def test_smt_sibling_copies_the_first_thread(tmp_path: Path) -> None:
    files = two_packages(threads=2)
    files[f"{CPU}/cpu5/topology/core_id"] = "7"  # Bulldozer: the second "thread" has its own core_id
    fast, full = read_both(write(tmp_path, files))
    assert fast.cpu(5).core_id == 0 and full.cpu(5).core_id == 7  # type: ignore[union-attr]
    assert fast.cores == full.cores and fast.caches == full.caches


def test_inconsistent_cache_map_first_cpu_wins_like_hwloc(tmp_path: Path) -> None:
    """A later CPU that disagrees with the first CPU's shared_cpu_map is not read: the first CPU's mask
    makes the group, as hwloc's look_sysfscpu does. Reading every CPU would give cpu1 a group of its own,
    and cpu3 (its index3 dir missing) no L3."""
    files = two_packages()
    files[f"{CPU}/cpu1/cache/index3/shared_cpu_list"] = "1"
    root = write(tmp_path, files)
    shutil.rmtree(root / CPU / "cpu3" / "cache" / "index3")
    fast, full = read_both(root)
    assert [str(g.cpus) for g in fast.groups(3)] == ["0-1", "2-3"]
    assert [str(g.cpus) for g in full.groups(3)] == ["0", "1", "2"]


# -- bad input: exit code 2, message names the path ---------------------------------------------------
def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=str(tmp_path / "nope")) as err:
        read_sysfs(tmp_path / "nope")
    assert err.value.exit_code == 2


def test_root_without_cpu_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="sys/devices/system/cpu"):
        read_sysfs(tmp_path)


def test_garbage_mask_names_the_file(tmp_path: Path) -> None:
    root = write(tmp_path, {f"{CPU}/cpu0/topology/thread_siblings": "zz,qq\n"})
    with pytest.raises(InputError, match=r"cpu0/topology/thread_siblings"):
        read_sysfs(root)


def test_garbage_integer_names_the_file(tmp_path: Path) -> None:
    root = write(tmp_path, {f"{CPU}/cpu0/topology/core_id": "seven\n"})
    with pytest.raises(InputError, match=r"cpu0/topology/core_id: expected an integer"):
        read_sysfs(root)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    root = write(tmp_path, {f"{CPU}/cpu0/topology/core_cpus_list": "0\n"})
    (root / CPU / "cpu0/topology/core_cpus_list").unlink()
    (root / CPU / "cpu0/topology/core_cpus_list").mkdir()  # reading a directory fails with EISDIR
    with pytest.raises(InputError, match=r"core_cpus_list: cannot read"):
        read_sysfs(root)


def test_cli_exit_code_2_on_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vmtune.cli.app import main

    code = main(["host", "--sysfs", str(tmp_path / "missing"), "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "missing") in err
    assert "Traceback" not in err


# -- the pure builder both readers share --------------------------------------------------------------
@given(
    st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 4), st.integers(1, 3)),
    st.sets(st.integers(0, 95)),
    st.booleans(),
)
def test_build_host_partitions_online_cpus(
    shape: tuple[int, int, int, int], offline: set[int], with_masks: bool
) -> None:
    sockets, cores, threads, nodes_per_socket = shape
    n_cpus = sockets * cores * threads
    assume(len(set(range(n_cpus)) - offline) > 0)
    core_of = {cpu: cpu // threads for cpu in range(n_cpus)}
    socket_of = {cpu: cpu // (cores * threads) for cpu in range(n_cpus)}
    node_of = {
        cpu: socket_of[cpu] * nodes_per_socket + core_of[cpu] % nodes_per_socket for cpu in range(n_cpus)
    }
    records = [
        CpuRecord(
            id=cpu,
            online=cpu not in offline,
            package_id=socket_of[cpu],
            core_id=core_of[cpu] % cores,
            siblings=CpuSet(c for c in range(n_cpus) if core_of[c] == core_of[cpu]) if with_masks else None,
            package_cpus=CpuSet(c for c in range(n_cpus) if socket_of[c] == socket_of[cpu])
            if with_masks
            else None,
            caches=(
                CacheRecord(level=3, cpus=CpuSet(c for c in range(n_cpus) if socket_of[c] == socket_of[cpu])),
            ),
        )
        for cpu in range(n_cpus)
    ]
    node_recs = [
        NodeRecord(id=n, cpus=CpuSet(c for c in range(n_cpus) if node_of[c] == n))
        for n in range(sockets * nodes_per_socket)
    ]
    host = build_host(name="gen", cpus=records, nodes=node_recs)
    online = CpuSet(set(range(n_cpus)) - offline)
    assert host.online == online
    for parts in ([c.cpus for c in host.cores], [s.cpus for s in host.sockets], [n.cpus for n in host.nodes]):
        assert CpuSet().union(*parts) == online and sum(map(len, parts)) == len(online)
    # a physical core is never split, and never merged with another (whatever core_id repeats)
    assert len(host.cores) == len({core_of[c] for c in online})
    assert len(host.sockets) == len({socket_of[c] for c in online})
    assert len(host.groups(3)) == len(host.sockets)
    assert [c.index for c in host.cores] == list(range(len(host.cores)))
    assert all(c.cpus.first() < d.cpus.first() for c, d in pairwise(host.cores))  # dense, ordered
