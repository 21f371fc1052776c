"""Domain XMLs whose guest-visible shape must survive the hook and re-plans (cells, topology, virtiofs,
memory hotplug), and the hosts they are planned on: named test hosts and the corpus sysfs dumps."""

from __future__ import annotations

from pathlib import Path

from testutil import CORPORA, HOSTS

__all__ = ["GUESTS", "corpus_roots", "domain", "named_roots"]

NS = "https://vmtune.dev/xmlns/1"
GIB = 1024 * 1024


def domain(
    name: str,
    *,
    vcpus: int,
    cells: tuple[tuple[str, int], ...] = (),
    topology: str = "",
    memory_kib: int | None = None,
    intent: str | None = "profile='balanced'",
    cell_attrs: str = "",
    distances: bool = False,
    devices: str = "",
    extra: str = "",
    cpu_mode: str = "host-passthrough",
) -> bytes:
    """``cells``: (vCPU list, KiB) per guest cell; ``memory_kib`` defaults to their sum."""
    total = memory_kib if memory_kib is not None else (sum(k for _, k in cells) or vcpus * GIB)
    numa = ""
    if cells:
        rows = []
        for i, (cpus, kib) in enumerate(cells):
            dist = ""
            if distances:
                sib = "".join(
                    f"<sibling id='{j}' value='{10 if i == j else 21}'/>" for j in range(len(cells))
                )
                dist = f"<distances>{sib}</distances>"
            rows.append(f"<cell id='{i}' cpus='{cpus}' memory='{kib}' unit='KiB'{cell_attrs}>{dist}</cell>")
        numa = "<numa>" + "".join(rows) + "</numa>"
    meta = f"<metadata><vmtune:tuning xmlns:vmtune='{NS}' {intent}/></metadata>" if intent else ""
    return (
        f"<domain type='kvm'><name>{name}</name>{meta}{extra}<memory unit='KiB'>{total}</memory>"
        f"<vcpu placement='static'>{vcpus}</vcpu>"
        "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>"
        f"<cpu mode='{cpu_mode}' check='none'>{topology}<feature policy='require' name='invtsc'/>{numa}</cpu>"
        f"<devices>{devices}<memballoon model='none'/></devices></domain>\n"
    ).encode()


VIRTIOFS = (
    "<filesystem type='mount' accessmode='passthrough'><driver type='virtiofs'/>"
    "<source dir='/srv'/><target dir='srv'/></filesystem>"
)
DIMM = "<memory model='dimm'><target><size unit='KiB'>1048576</size><node>1</node></target></memory>"

GUESTS: dict[str, bytes] = {
    "two-cells": domain("two-cells", vcpus=8, cells=(("0-3", GIB), ("4-7", GIB)),
                        topology="<topology sockets='2' cores='4' threads='1'/>"),
    "four-cells-smt": domain("four-cells-smt", vcpus=32,
                             cells=tuple((f"{i * 8}-{i * 8 + 7}", GIB + 123) for i in range(4)),
                             topology="<topology sockets='4' cores='4' threads='2'/>", distances=True),
    "uneven-cells": domain("uneven-cells", vcpus=6, cells=(("0-3", 3 * GIB // 2), ("4-5", GIB // 2)),
                           intent="profile='latency'"),
    "virtiofs": domain("virtiofs", vcpus=4, cells=(("0-3", GIB),), cell_attrs=" memAccess='shared'",
                       devices=VIRTIOFS),
    "hotplug": domain("hotplug", vcpus=8, cells=(("0-3", GIB), ("4-7", GIB)),
                      memory_kib=3 * GIB, extra="<maxMemory slots='16' unit='KiB'>134217728</maxMemory>",
                      devices=DIMM),
    "no-cells": domain("no-cells", vcpus=4, topology="<topology sockets='1' cores='2' threads='2'/>"),
    "shared-cells": domain("shared-cells", vcpus=4, cells=(("0-1", GIB // 2), ("2-3", GIB // 2)),
                           intent="profile='balanced' cpu-policy='shared'"),
}  # fmt: skip


def named_roots() -> list[Path]:
    return sorted(p for p in HOSTS.iterdir() if (p / "sys").is_dir())


def corpus_roots() -> list[Path]:
    base = CORPORA / "sysfs"
    return sorted(p for p in base.iterdir() if (p / "sys").is_dir()) if base.is_dir() else []
