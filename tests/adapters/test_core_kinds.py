"""Big and little cores: the sysfs reader on the corpus's hybrid machines and on generated trees, each kind
of evidence (cpu_core/cpu_atom PMUs, cpu_capacity classes, the SMT/L2 layout), snapshots keeping the PMU
files, and the capabilities reader telling the kinds from the layout alone.

The expected kinds are written from each dump's own documentation (INDEX.md: part numbers, P/E core counts),
never from what the reader says."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysfsgen import CoreKind, HostSpec, write_capabilities, write_sysfs
from vmtune.adapters.snapshot import read_snapshot, write_snapshot
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.topology.kinds import PMU_EVIDENCE
from vmtune.core.topology.model import KIND_BIG, KIND_LITTLE, Host
from vmtune.cpuset import CpuSet
from vmtune.xmlmap.capabilities import parse_capabilities


def kind_cpus(host: Host, kind: int) -> CpuSet:
    return CpuSet().union(*(c.cpus for c in host.cores if c.kind == kind))


# machine, big CPUs, little CPUs, the evidence named (its start)
CORPUS = [
    # Raptor Lake i7-1370P: 6 P-cores with HT, 8 E-cores in two L2 clusters; no PMU files, no cpu_capacity
    ("hwloc-20em64t-hybrid-1p6c2t+2ca4co1t", "0-11", "12-19", "layout: "),
    # DGX Spark GB10: Cortex-X925 (capacity 997-1024) and Cortex-A725 (718-731), five of each per cluster
    ("hwloc-nvidia-dgx-gb10", "5-9,15-19", "0-4,10-14", "cpu_capacity: little 718-731, big 997-1024"),
    # phone SoC: A510 x3 (280) against A710/A715 (855) and X3 (1024): the largest gap is A510's
    ("utillinux-arm-A510-A710-A715-X3", "3-7", "0-2", "cpu_capacity: little 280, big 855-1024"),
    # hwloc's hand-made heterogeneous host: capacity 234 against 1025
    ("hwloc-fakeheterocpunuma", "12-23", "0-11", "cpu_capacity: little 234, big 1025"),
]


@pytest.mark.parametrize(("name", "big", "little", "evidence"), CORPUS)
def test_corpus_hybrids(corpora: Path, name: str, big: str, little: str, evidence: str) -> None:
    host = read_sysfs(corpora / "sysfs" / name)
    assert kind_cpus(host, KIND_BIG) == CpuSet.parse(big)
    assert kind_cpus(host, KIND_LITTLE) == CpuSet.parse(little)
    assert host.kind_evidence is not None and host.kind_evidence.startswith(evidence)


def test_no_other_corpus_machine_is_hybrid(corpora: Path) -> None:
    # frequency binning (several close capacities) and cores whose sibling is offline are not two kinds
    hybrids = {name for name, *_ in CORPUS}
    for root in sorted(p for p in (corpora / "sysfs").iterdir() if p.is_dir()):
        host = read_sysfs(root)
        assert host.hybrid == (root.name in hybrids), root.name
        assert all((c.kind is None) != host.hybrid for c in host.cores), root.name


def test_s390_books_and_drawers(corpora: Path) -> None:
    # util-linux s390-lpar: book_siblings 0-5 and 8-19 (CPUs 0, 6, 7 offline)
    host = read_sysfs(corpora / "sysfs" / "utillinux-s390-lpar")
    books = {c.book: set() for c in host.cores}
    for core in host.cores:
        books[core.book].add(core.cpus.first())
    assert sorted(map(sorted, books.values())) == [[1, 2, 3, 4, 5], list(range(8, 20))]
    assert {c.drawer for c in host.cores} == {-1}
    # hwloc's z196 LPAR: two drawers (drawer_id 0/1)
    assert {c.drawer for c in read_sysfs(corpora / "sysfs" / "hwloc-20s390-2g6s4c").cores} == {0, 1}


P_AND_E = (CoreKind(cores=4, threads=2, capacity=None), CoreKind(cores=8, l2_cores=4, capacity=None))


def _write(spec: HostSpec, root: Path) -> Host:
    write_sysfs(spec, root)
    return read_sysfs(root)


def test_pmu_files_win_over_everything(tmp_path: Path) -> None:
    # x86 hybrid trees carry cpu_core/cpu_atom: the P-cores (listed first) are big
    host = _write(HostSpec(name="pe", cores_per_node=12, kinds=P_AND_E, l3_cores=12), tmp_path)
    assert (tmp_path / "sys/devices/cpu_core/cpus").read_text() == "0-7\n"
    assert host.kind_evidence == PMU_EVIDENCE
    assert kind_cpus(host, KIND_BIG) == CpuSet.parse("0-7")
    assert kind_cpus(host, KIND_LITTLE) == CpuSet.parse("8-15")


def test_layout_tells_p_from_e_cores_without_pmu_files(tmp_path: Path) -> None:
    write_sysfs(HostSpec(name="pe", cores_per_node=12, kinds=P_AND_E, l3_cores=12), tmp_path)
    for pmu in ("cpu_core", "cpu_atom"):
        (tmp_path / f"sys/devices/{pmu}/cpus").unlink()
    host = read_sysfs(tmp_path)
    assert host.kind_evidence is not None and host.kind_evidence.startswith("layout: ")
    assert kind_cpus(host, KIND_BIG) == CpuSet.parse("0-7")


@pytest.mark.parametrize(
    ("capacities", "little"),
    [
        ((1024, 1000), None),  # one core type binned at two frequencies: 2 % apart, alike
        ((1024, 512), "4-7"),
        ((512, 1024), "0-3"),
    ],
)
def test_capacity_classes_split_only_at_a_real_gap(
    tmp_path: Path, capacities: tuple[int, int], little: str | None
) -> None:
    kinds = tuple(CoreKind(cores=4, capacity=c) for c in capacities)
    host = _write(HostSpec(name="arm", arch="aarch64", cores_per_node=8, kinds=kinds, l3_cores=8), tmp_path)
    assert host.hybrid == (little is not None)
    if little is not None:
        assert kind_cpus(host, KIND_LITTLE) == CpuSet.parse(little)


def test_a_core_with_an_offline_sibling_is_no_little_core(tmp_path: Path) -> None:
    # SMT2 cores with private L2s, CPU 3's sibling offline: one single-thread core, no shared L2: alike
    spec = HostSpec(name="ht", cores_per_node=4, threads_per_core=2, sibling_numbering="interleaved",
                    l3_cores=4, offline=(5,))  # fmt: skip
    assert not _write(spec, tmp_path).hybrid


def test_snapshot_keeps_the_pmu_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    direct = _write(HostSpec(name="pe", cores_per_node=12, kinds=P_AND_E, l3_cores=12), root)
    snap = tmp_path / "snap.tar.gz"
    write_snapshot(root, snap)
    again = read_sysfs(snap, tree=read_snapshot(snap).tree)
    assert again.kind_evidence == PMU_EVIDENCE
    assert [c.kind for c in again.cores] == [c.kind for c in direct.cores]


def test_capabilities_tell_kinds_from_the_layout(tmp_path: Path) -> None:
    # libvirt lists no PMU, no capacity and no L2: the clusters (x86 numbers them by L2) and siblings do
    spec = HostSpec(name="pe", cores_per_node=12, kinds=P_AND_E, l3_cores=12)
    from_sysfs = _write(spec, tmp_path)
    from_caps = parse_capabilities(write_capabilities(spec), source="caps.xml")
    assert [c.kind for c in from_caps.cores] == [c.kind for c in from_sysfs.cores]
    assert from_caps.kind_evidence is not None and "cluster" in from_caps.kind_evidence
