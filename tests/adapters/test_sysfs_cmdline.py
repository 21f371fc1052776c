"""isolcpus and nohz_full from ``proc/cmdline`` when sysfs has no ``isolated``/``nohz_full`` file."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmtune.adapters.sysfs import cmdline_cpus, read_sysfs
from vmtune.cpuset import CpuSet

CPU = "sys/devices/system/cpu"


@pytest.mark.parametrize(
    ("cmdline", "key", "cpus"),
    [
        ("ro quiet isolcpus=2-7", "isolcpus", "2-7"),
        ("isolcpus=managed_irq,domain,2-7,10 nohz_full=2-7", "isolcpus", "2-7,10"),
        ("isolcpus=managed_irq,domain,2-7 nohz_full=2-7", "nohz_full", "2-7"),
        ("isolcpus=nohz,domain", "isolcpus", None),
        ("quiet", "isolcpus", None),
        (None, "isolcpus", None),
    ],
)
def test_cmdline_cpus(cmdline: str | None, key: str, cpus: str | None) -> None:
    assert cmdline_cpus(cmdline, key) == (None if cpus is None else CpuSet.parse(cpus))


def test_sysfs_without_isolated_file_reads_the_cmdline(tmp_path: Path) -> None:
    files = {
        f"{CPU}/online": "0-7\n",
        "proc/cmdline": "BOOT_IMAGE=/vmlinuz isolcpus=managed_irq,domain,2-7\x00",
    }
    files |= {f"{CPU}/cpu{i}/topology/core_cpus_list": f"{i}\n" for i in range(8)}
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    host = read_sysfs(tmp_path)
    assert host.isolated == CpuSet.parse("2-7")
    # the sysfs file, when there, is the kernel's own word
    (tmp_path / CPU / "isolated").write_text("\n")
    assert read_sysfs(tmp_path).isolated == CpuSet()
