"""The sysfs reader on the 44 real machines of ../shared/corpora/sysfs, against two independent counts.

1. hwloc: ``lstopo --input ROOT --of xml`` (Debian package ``hwloc``), counting Package, NUMANode, Core, PU,
   L2Cache and L3Cache objects, for every machine hwloc can read. Our summary must equal it, except where
   DIFFERS_FROM_HWLOC says why we deliberately differ.
2. INDEX.md's per-machine table (sockets, NUMA nodes, cores, threads per core, cache groups), for every
   machine, with the deliberate differences in DIFFERS_FROM_INDEX.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.topology.model import Host

pytestmark = pytest.mark.corpus

# (sockets, numa_nodes, cores, threads, l2_groups, l3_groups), as lstopo counts
DIFFERS_FROM_HWLOC: dict[str, tuple[tuple[int, int, int, int, int, int], str]] = {
    "hwloc-2ps3-2t": (
        (1, 1, 1, 2, 0, 0),
        "PS3 topology/ has only thread_siblings: no package mask or id, so hwloc makes no Package; "
        "vmtune needs every CPU in a socket and reports one",
    ),
}

# hwloc cannot read these (no topology/ on cpu0, or a tree lstopo rejects); INDEX.md checks them instead.
HWLOC_CANNOT_READ = {
    "hwloc-fakeheterocpunuma",
    "libvirt-deconf-cpus",
    "libvirt-high-ids",
    "libvirt-subcores3",
    "libvirt-test3",
    "libvirt-test6",
    "libvirt-with-clusters",
    "libvirt-with-frequency",
}

# INDEX.md column -> why we differ. INDEX counts distinct *ids*; we follow the kernel masks, as hwloc does
# (every entry below that says "as hwloc" is checked equal to lstopo by test_summary_equals_lstopo).
_CORE_ID_TRAP = "core_id repeats on both dies of a package; thread_siblings are single CPUs (as hwloc)"
DIFFERS_FROM_INDEX: dict[str, dict[str, str]] = {
    "libvirt-test3": {
        "cores": "INDEX groups by (package, core_id) and says so; the truth is 48 cores (node = die)"
    },
    "hwloc-20s390-2g6s4c": {
        "sockets": "physical_package_id=-1; core_siblings masks give 8 packages (as hwloc)",
        "cores": "thread_siblings are single CPUs: 20 cores although core_id repeats (as hwloc)",
    },
    "utillinux-s390-lpar": {
        "sockets": "package masks (core_siblings) give 7 packages (as hwloc)",
        "cores": "thread_siblings are single CPUs (as hwloc)",
    },
    "hwloc-256ppc-8n8s4t": {
        "sockets": "physical_package_id=-1; core_siblings is per core: 64 packages (as hwloc)"
    },
    "utillinux-ppc64-POWER7-64cpu": {"sockets": "core_siblings per core: 16 packages (as hwloc)"},
    "hwloc-fakememinitiators-1np2c+1npp+gi": {"cores": "core_cpus are single CPUs: 8 cores (as hwloc)"},
    "hwloc-8em64t-2s2ca2c-buggynuma": {
        "numa_nodes": "nodes 1-7 repeat node 0's CPUs: ignored, as hwloc does"
    },
    "hwloc-64amd64-4s2n4ca2co": {
        "l2_groups": "shared_cpu_list says private but shared_cpu_map (hwloc's source, and the machine name "
        "'4ca2co') says the two cores of a Bulldozer module share the L2: 32 groups"
    },
    "hwloc-16em64t-4s2c2t-offlines": {
        "threads": "INDEX gives 16 cpuN dirs; 2,5,13,14 are offline (as hwloc: 12)"
    },
    "hwloc-32amd64-4s2n4c-cgroup2": {"cores": _CORE_ID_TRAP},
    "hwloc-48amd64-4pa2n6c-sparse": {"cores": _CORE_ID_TRAP},
    "utillinux-sparc64": {
        "sockets": "core_siblings per CPU: 6 packages (as hwloc)",
        "cores": "core_id is the same on every CPU but thread_siblings are single CPUs: 6 cores (as hwloc)",
    },
    "utillinux-s390-lpar-drawer": {
        "l2_groups": "INDEX says no cache data; the dump has per-CPU L2 dirs (as hwloc)"
    },
}


def _index_rows(corpora: Path) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in (corpora / "sysfs" / "INDEX.md").read_text().splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "machine":
            header = cells
            continue
        rows[cells[0]] = dict(zip(header, cells, strict=False))
    return rows


def _first_int(text: str) -> int | None:
    m = re.match(r"\d+", text)
    return int(m.group()) if m else None


def _groups(text: str) -> int:
    """'48x2' -> 48, '7x1/2' -> 7, '-' -> 0."""
    return _first_int(text) or 0


def _machines(corpora: Path) -> list[Path]:
    return sorted(p for p in (corpora / "sysfs").iterdir() if p.is_dir())


def _summary6(host: Host) -> tuple[int, int, int, int, int, int]:
    s = host.summary()
    return (s.sockets, s.numa_nodes, s.cores, s.threads, s.cache_groups[2], s.cache_groups[3])


def _lstopo_counts(root: Path) -> tuple[int, int, int, int, int, int] | None:
    proc = subprocess.run(
        ["lstopo", "--input", str(root), "--of", "xml", "-"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        return None
    counts: dict[str, int] = {}
    for obj in etree.fromstring(proc.stdout).iter("object"):
        counts[obj.get("type", "")] = counts.get(obj.get("type", ""), 0) + 1
    keys = ("Package", "NUMANode", "Core", "PU", "L2Cache", "L3Cache")
    return tuple(counts.get(k, 0) for k in keys)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def machines(corpora: Path) -> dict[str, Host]:
    return {root.name: read_sysfs(root) for root in _machines(corpora)}


def test_corpus_has_44_machines(corpora: Path) -> None:
    assert len(_machines(corpora)) == 44


@pytest.mark.skipif(shutil.which("lstopo") is None, reason="hwloc (lstopo) not installed")
def test_summary_equals_lstopo(corpora: Path, machines: dict[str, Host]) -> None:
    equal, unreadable, mismatches = [], [], []
    for root in _machines(corpora):
        ref = _lstopo_counts(root)
        if ref is None:
            unreadable.append(root.name)
            continue
        ours = _summary6(machines[root.name])
        if root.name in DIFFERS_FROM_HWLOC:
            expected, _why = DIFFERS_FROM_HWLOC[root.name]
            assert ours == expected, root.name
            assert ours != ref, f"{root.name} now agrees with hwloc: drop it from DIFFERS_FROM_HWLOC"
            continue
        if ours == ref:
            equal.append(root.name)
        else:
            mismatches.append(f"{root.name}: ours {ours} lstopo {ref}")
    assert not mismatches, "\n".join(mismatches)
    assert set(unreadable) == HWLOC_CANNOT_READ
    assert len(equal) == 44 - len(HWLOC_CANNOT_READ) - len(DIFFERS_FROM_HWLOC)


def test_summary_matches_index(corpora: Path, machines: dict[str, Host]) -> None:
    rows = _index_rows(corpora)
    assert set(rows) == set(machines)
    problems = []
    for name, host in machines.items():
        row, s = rows[name], host.summary()
        allowed = DIFFERS_FROM_INDEX.get(name, {})
        nodes_text = row["NUMA nodes (ids)"]
        index_nodes = _first_int(nodes_text) or 0
        ours = {
            "sockets": (s.sockets, _first_int(row["sockets"])),
            "numa_nodes": (s.numa_nodes, index_nodes if index_nodes else 1),  # no node/ dir -> one node
            "cores": (s.cores, _first_int(row["cores"])),
            "threads": (s.threads, _threads(row["CPUs"])),
            "threads_per_core": (s.threads_per_core, _max_tpc(row["thr/core"])),
            "l2_groups": (s.cache_groups[2], _groups(row["L2 groups"])),
            "l3_groups": (s.cache_groups[3], _groups(row["L3 groups"])),
        }
        if name == "libvirt-test3":
            ours["threads_per_core"] = (s.threads_per_core, 1)  # INDEX: "the truth is 48 cores x 1 thread"
        for key, (got, want) in ours.items():
            if got != want and key not in allowed:
                problems.append(f"{name} {key}: ours {got}, INDEX {want}")
            if got == want and key in allowed:
                problems.append(f"{name} {key}: equal now, drop it from DIFFERS_FROM_INDEX")
    assert not problems, "\n".join(problems)


def _threads(cpus_cell: str) -> int:
    """'24 [4-20]' -> online count 17; '16' -> 16."""
    m = re.search(r"\[([^\]]+)\]", cpus_cell)
    if not m:
        return _first_int(cpus_cell) or 0
    from vmtune.cpuset import CpuSet

    online = CpuSet.parse(m.group(1))
    total = _first_int(cpus_cell) or 0
    # libvirt-with-clusters: cpu/online says 0-223 while only cpu0-7 exist
    return min(len(online), total)


def _max_tpc(text: str) -> int:
    return max(int(x) for x in re.findall(r"\d+", text))


def test_every_machine_reads_clean_models(machines: dict[str, Host]) -> None:
    for name, host in machines.items():
        assert host.online, name
        for core in host.cores:
            assert core.cpus and core.cpus.issubset(host.sockets[core.socket].cpus), name
        assert sum(len(n.cpus) for n in host.nodes) == len(host.online), name


def test_warnings_only_where_the_dump_is_odd(machines: dict[str, Host]) -> None:
    warned = {name for name, host in machines.items() if host.warnings}
    assert warned == {"hwloc-8em64t-2s2ca2c-buggynuma", "hwloc-offline-cpu0-node0", "hwloc-fakeheterocpunuma"}
    assert any("buggy" in w for w in machines["hwloc-8em64t-2s2ca2c-buggynuma"].warnings)


def test_sparse_node_distances_are_positional(machines: dict[str, Host]) -> None:
    host = machines["hwloc-48amd64-4pa2n6c-sparse"]
    assert [n.id for n in host.nodes] == [0, 1, 2, 33, 34, 45, 72, 73]
    node33 = host.node(33)
    assert node33 is not None and node33.distance_to(33) == 10 and node33.distance_to(0) == 22
    gpu = machines["hwloc-nvidiagpunumanodes"]
    assert gpu.node(250) is not None and not gpu.node(250).cpus  # type: ignore[union-attr]
    assert gpu.node(0).distance_to(250) == 80  # type: ignore[union-attr]


def test_offline_cpu0_and_missing_node0(machines: dict[str, Host]) -> None:
    host = machines["hwloc-offline-cpu0-node0"]
    assert 0 in host.offline
    assert [n.id for n in host.nodes] == [1]
    assert host.nodes[0].distances == ((1, 10),)  # 2-column row mapped through node/possible


# Bulldozer compute units (and VMware's view of Piledriver modules) are reported as two thread siblings
# with their own core_id each; the reader copies the first thread's record to its sibling (one core, one
# set of ids), so only those raw per-CPU ids differ from reading every CPU.
SIBLING_IDS_DIFFER = {"hwloc-64amd64-4s2n4ca2co", "utillinux-vmware_fpe"}


def _without_raw_ids(host: Host) -> Host:
    cpus = tuple(replace(c, core_id=None, die_id=None, cluster_id=None) for c in host.cpus)
    return replace(host, cpus=cpus)


def test_shortcuts_equal_exhaustive_read(corpora: Path, machines: dict[str, Host]) -> None:
    """The reader skips files that earlier CPUs' masks already answer; on real dumps that changes nothing."""
    for name, host in machines.items():
        full = read_sysfs(corpora / "sysfs" / name, exhaustive=True)
        if name in SIBLING_IDS_DIFFER:
            assert host != full and _without_raw_ids(host) == _without_raw_ids(full), name
        else:
            assert host == full, name
