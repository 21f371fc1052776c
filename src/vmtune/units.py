"""Sizes, page sizes and how vmtune writes and reads them: the one home for KiB arithmetic.

vmtune counts memory in KiB everywhere, as libvirt's ``<memory>`` default unit and the kernel's
``hugepages-<size>kB`` directories do; these helpers turn such counts into text and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "DEFAULT_HUGEPAGE_KIB",
    "GIB",
    "HUGEPAGE_SIZES",
    "LIBVIRT_UNIT_BYTES",
    "MIB",
    "PAGE_1G",
    "PAGE_2M",
    "TIB",
    "fmt_kib",
    "fmt_kib_brief",
    "page_label",
    "parse_size_kib",
]

MIB = 1 << 10
"""KiB in a MiB."""
GIB = 1 << 20
"""KiB in a GiB."""
TIB = 1 << 30
"""KiB in a TiB."""

PAGE_2M = 2 * MIB
PAGE_1G = GIB
DEFAULT_HUGEPAGE_KIB = PAGE_2M
"""The x86 default hugepage size: what libvirt uses for ``<hugepages/>`` without ``<page size>``."""
HUGEPAGE_SIZES: Mapping[str, int] = MappingProxyType({"2M": PAGE_2M, "1G": PAGE_1G})
"""The hugepage sizes ``--hugepages`` and the metadata accept, by the name they are written with."""


def _scaled_units() -> Mapping[str, int]:
    units = {"b": 1, "bytes": 1}
    for power, prefix in enumerate("kmgtpe", start=1):
        units[prefix] = units[f"{prefix}ib"] = 1024**power
        units[f"{prefix}b"] = 1000**power
    return MappingProxyType(units)


LIBVIRT_UNIT_BYTES = _scaled_units()
"""libvirt's scaled-integer units (virScaleInteger), lower case, in bytes: a bare prefix and ``KiB``..
are powers of 1024, ``KB``.. powers of 1000."""


def page_label(size_kib: int) -> str:
    """A page size as the kernel and libvirt users write it: ``4K``, ``2M``, ``1G``, ``16G``."""
    for unit, scale in (("G", GIB), ("M", MIB)):
        if size_kib >= scale and size_kib % scale == 0:
            return f"{size_kib // scale}{unit}"
    return f"{size_kib}K"


def fmt_kib(kib: int) -> str:
    """``512 KiB``, ``1.25 MiB``, ``14 MiB``, ``95.5 GiB``: at most two decimals, trailing zeros dropped."""
    for unit, scale in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB)):
        if kib >= scale:
            value = f"{kib / scale:.2f}".rstrip("0").rstrip(".")
            return f"{value} {unit}"
    return f"{kib} KiB"


def fmt_kib_brief(kib: int) -> str:
    """A memory amount in the planner's notes: ``4 GiB``, ``1.5 GiB``, else whole MiB (``512 MiB``)."""
    if kib % GIB == 0:
        return f"{kib // GIB} GiB"
    if kib >= GIB:
        return f"{kib / GIB:.1f} GiB"
    return f"{kib // MIB} MiB"


def parse_size_kib(raw: str) -> int:
    """``32K`` (how the kernel prints cache sizes), ``8M``, ``1G`` or a bare KiB count; ValueError else."""
    num, unit = raw[:-1], raw[-1:].upper()
    if unit.isdigit():
        num, unit = raw, "K"
    scale = {"K": 1, "M": MIB, "G": GIB}.get(unit)
    if scale is None or not num.isdigit():
        raise ValueError(raw)
    return int(num) * scale
