"""Write a ``/sys/fs/resctrl`` below a test root as the kernel shows it (filesystems/resctrl.rst).

``info/<RESOURCE>/{cbm_mask,min_cbm_bits,num_closids,shareable_bits}`` per cache resource (``L3``, or
``L3CODE`` + ``L3DATA`` with CDP on), ``MB`` beside them as on a host with memory bandwidth allocation, the
default group's ``schemata`` at the top (indented lines, ``MB:`` included, as the kernel prints them) and
one directory per control group with its own ``schemata`` (plus ``mon_groups``/``mon_data``, which have
none).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sysfsgen import HostSpec

__all__ = ["SKX", "WAY_KIB", "write_resctrl"]

WAY_KIB = 2560
SKX = HostSpec(
    name="skx-1s",
    sockets=1,
    cores_per_node=8,
    threads_per_core=2,
    l3_cores=8,
    l3_kib=11 * WAY_KIB,
    vendor="GenuineIntel",
)
"""A one-socket Skylake-SP with an 11-way 27.5 MiB L3 (2.5 MiB a way), as the resctrl tests lay it out."""


def _put(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_resctrl(
    root: Path,
    *,
    default: Mapping[int, int],
    cbm_mask: int = 0x7FF,
    min_cbm_bits: int = 1,
    num_closids: int = 16,
    shareable_bits: int = 0,
    cdp: bool = False,
    groups: Mapping[str, Mapping[int, int]] | None = None,
) -> Path:
    """``default``: cache id -> the default group's mask; ``groups``: name -> (cache id -> mask)."""
    base = root / "sys" / "fs" / "resctrl"
    names = ("L3CODE", "L3DATA") if cdp else ("L3",)
    closids = num_closids // 2 if cdp else num_closids  # the kernel halves them for CDP
    for name in names:
        info = base / "info" / name
        _put(info / "cbm_mask", f"{cbm_mask:x}\n")
        _put(info / "min_cbm_bits", f"{min_cbm_bits}\n")
        _put(info / "num_closids", f"{closids}\n")
        _put(info / "shareable_bits", f"{shareable_bits:x}\n")
    _put(base / "info" / "MB" / "min_bandwidth", "10\n")
    _put(base / "info" / "last_cmd_status", "ok\n")

    def schemata(masks: Mapping[int, int]) -> str:
        cache = [f"{n:>6}:" + ";".join(f"{i}={m:x}" for i, m in sorted(masks.items())) for n in names]
        return "\n".join([*cache, "    MB:" + ";".join(f"{i}=100" for i in sorted(masks))]) + "\n"

    _put(base / "schemata", schemata(default))
    for name, masks in (groups or {}).items():
        _put(base / name / "schemata", schemata(masks))
        _put(base / name / "tasks", "")
    (base / "mon_groups").mkdir(exist_ok=True)
    (base / "mon_data").mkdir(exist_ok=True)
    return base
