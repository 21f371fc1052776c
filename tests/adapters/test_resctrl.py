"""The resctrl reader on test roots written like the kernel's (tests/resctrlgen.py), and on raw files."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from resctrlgen import write_resctrl
from sysfsgen import HostSpec, write_sysfs
from vmtune.adapters.probes import probe_host_caps
from vmtune.adapters.resctrl import parse_schemata, read_resctrl
from vmtune.adapters.snapshot import write_snapshot


def test_not_mounted_is_none(tmp_path: Path) -> None:
    assert read_resctrl(tmp_path) is None
    (tmp_path / "sys/fs/resctrl").mkdir(parents=True)  # the mount point of an unmounted resctrl
    assert read_resctrl(tmp_path) is None
    assert probe_host_caps(tmp_path).resctrl is None


@pytest.mark.parametrize(
    ("cdp", "names", "closids"), [(False, ("L3",), 16), (True, ("L3CODE", "L3DATA"), 8)], ids=["cat", "cdp"]
)
def test_reads_resources_default_and_groups(
    tmp_path: Path, cdp: bool, names: tuple[str, ...], closids: int
) -> None:
    write_resctrl(
        tmp_path,
        default={0: 0x1F, 1: 0x7FF},
        shareable_bits=0x600,
        cdp=cdp,
        groups={"qemu-3-web1-vcpus_0-1": {0: 0xE0, 1: 0x7FF}, "batch": {0: 0x700, 1: 0x7FF}},
    )
    found = read_resctrl(tmp_path)
    assert found is not None
    assert [r.name for r in found.resources] == list(names)  # MB is not a cache resource
    res = found.resources[0]
    assert (res.ways, res.min_cbm_bits, res.num_closids, res.shareable_bits) == (11, 1, closids, 0x600)
    assert (res.level, res.type) == (3, "data" if cdp and res.name == "L3DATA" else "code" if cdp else "both")
    assert found.default.mask(names[0], 0) == 0x1F
    assert found.default.mask(names[-1], 1) == 0x7FF
    assert [g.name for g in found.groups] == ["batch", "qemu-3-web1-vcpus_0-1"]  # mon_groups: no schemata
    assert found.groups[1].mask(names[0], 0) == 0xE0
    assert probe_host_caps(tmp_path).resctrl == found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n", (("L3", 0, 0x7FF), ("L3", 1, 0x7FF))),
        ("L3CODE:0=f0\nL3DATA:0=0f\n", (("L3CODE", 0, 0xF0), ("L3DATA", 0, 0x0F))),
        ("L2:0=3;1=c\n", (("L2", 0, 3), ("L2", 1, 0xC))),
        ("L3:0=zz;1=3\nnonsense\n", (("L3", 1, 3),)),
        ("", ()),
    ],
    ids=["l3-mb", "cdp", "l2", "garbage-skipped", "empty"],
)
def test_parse_schemata(text: str, expected: tuple[tuple[str, int, int], ...]) -> None:
    assert parse_schemata(text) == expected


def test_unreadable_mask_leaves_the_resource_out(tmp_path: Path) -> None:
    base = write_resctrl(tmp_path, default={0: 0x1F})
    (base / "info/L3/cbm_mask").write_text("not hex\n")
    assert read_resctrl(tmp_path) is None


def test_a_snapshot_carries_resctrl(tmp_path: Path) -> None:
    """``vmtune host snapshot`` takes resctrl's info files and every group's schemata; extracted, the
    snapshot reads back as the same Resctrl (the probes read real files, not the archive)."""
    root = tmp_path / "host"
    write_sysfs(HostSpec(name="one", cores_per_node=2, l3_cores=2), root)
    write_resctrl(root, default={0: 0x1F}, cdp=True, groups={"qemu-1-a-vcpus_0": {0: 0x60}})
    write_snapshot(root, tmp_path / "snap.tar.gz")
    with tarfile.open(tmp_path / "snap.tar.gz") as tar:
        tar.extractall(tmp_path / "out")
    assert read_resctrl(tmp_path / "out") == read_resctrl(root) is not None
