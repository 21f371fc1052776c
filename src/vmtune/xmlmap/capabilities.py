"""Read host topology from ``virsh capabilities`` XML into the same :class:`Host` the sysfs reader builds.

What libvirt puts there (src/conf/capabilities.c) and how it maps:

- ``host/topology/cells/cell``: one NUMA node each, with ``memory`` (KiB), ``pages`` (counts per page
  size, the first being the base page, not a hugepage), ``distances/sibling`` and ``cpus/cpu``.
- ``cpu``: ``socket_id``, ``die_id``, ``cluster_id``, ``core_id`` and ``siblings`` (the thread siblings)
  are printed only for online CPUs; an offline CPU is a bare ``<cpu id='N'/>``. The test driver prints
  bare CPUs for every CPU, so when no CPU in the file has details they are all taken as online.
- ``host/cache/bank``: libvirt only exposes caches from level 3 up (``cache_min_level = 3`` in
  virCapabilitiesInitCaches), so L2 groups are known only when a bank says level 2; otherwise
  ``l2_groups`` is 0 from this reader while sysfs counts them.
- No free-memory or free-hugepage numbers exist in this XML: ``mem_free_kib`` stays None and free
  hugepages are taken as equal to the total, with a warning.
- ``host/cpu/feature``: the host's own CPUID (libvirt's virCPUGetHost), so ``hypervisor`` there means this
  host is itself a guest (nested KVM); ``capabilities_caps`` reads it into ``HostCaps.nested``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from vmtune.core.topology.build import CacheRecord, CpuRecord, NodeRecord, build_host
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host, HugePages
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.units import LIBVIRT_UNIT_BYTES
from vmtune.xmlmap.safe import parse_xml

__all__ = ["capabilities_caps", "parse_capabilities"]


def parse_capabilities(text: str, source: str) -> Host:
    """Parse ``virsh capabilities`` output; errors name ``source`` (and line:col for XML errors)."""
    root = parse_xml(text, source=source, root="capabilities").getroot()
    host = root.find("host")
    if host is None:
        raise InputError(f"{source}: no <host> element in <capabilities>")
    cpu_el = host.find("cpu")
    cells = host.findall("topology/cells/cell")
    if not cells:
        raise InputError(
            f"{source}: no <host><topology><cells>: this capabilities XML does not describe the host's "
            "CPUs and NUMA nodes (libvirt test driver?); use --sysfs instead"
        )
    base_page = _base_page(cpu_el, source)
    nodes = [_cell_record(cell, base_page, source) for cell in cells]
    warnings: list[str] = []
    if any(p.total > 0 for n in nodes for p in n.hugepages):
        warnings.append(f"{source}: capabilities XML has no free hugepage counts; assuming all are free")
    records = _cpu_records(
        [cpu for cell in cells for cpu in cell.findall("cpus/cpu")], _banks(host, source), source
    )
    totals = [n.mem_total_kib for n in nodes if n.mem_total_kib is not None]
    return build_host(
        name=source,
        cpus=records,
        nodes=nodes,
        arch=_text(cpu_el, "arch"),
        vendor=_text(cpu_el, "vendor"),
        model=_text(cpu_el, "model"),
        memory_total_kib=sum(totals) if totals else None,
        warnings=warnings,
    )


def _cell_record(cell: etree._Element, base_page: int | None, source: str) -> NodeRecord:
    """One ``<cell>``: its CPUs, memory, hugepage pools (not the base page) and SLIT distances."""
    nid = _int_attr(cell, "id", source)
    if nid is None:
        raise InputError(f"{source}:{cell.sourceline}: <cell> without id")
    ids: list[int] = []
    for cpu in cell.findall("cpus/cpu"):
        cid = _int_attr(cpu, "id", source)
        if cid is None:
            raise InputError(f"{source}:{cpu.sourceline}: <cpu> without id")
        ids.append(cid)
    mem_el = cell.find("memory")
    mem = _size_kib(mem_el, source) if mem_el is not None else None
    sized = [(_size_kib(p, source, size_attr=True), p) for p in cell.findall("pages")]
    # The base page size is no hugepage pool; without host/cpu/pages it is the cell's smallest size.
    base = base_page if base_page is not None else min((s for s, _ in sized if s), default=None)
    pages = [
        HugePages(size_kib=int(size), total=_int_text(page, source), free=_int_text(page, source))
        for size, page in sized
        if size is not None and size != base
    ]
    dists = []
    for sib in cell.findall("distances/sibling"):
        other, value = _int_attr(sib, "id", source), _int_attr(sib, "value", source)
        if other is None or value is None:
            raise InputError(f"{source}:{sib.sourceline}: <sibling> needs id and value")
        dists.append((other, value))
    return NodeRecord(
        id=nid,
        cpus=CpuSet(ids),
        mem_total_kib=int(mem) if mem is not None else None,
        hugepages=tuple(pages),
        distances=tuple(dists),
    )


def _cpu_records(cpu_els: list[etree._Element], banks: Sequence[CacheRecord], source: str) -> list[CpuRecord]:
    """Every ``<cpu>`` of every cell; with detailed topology elsewhere, a CPU without it is offline."""
    detailed = any(el.get("siblings") is not None or el.get("core_id") is not None for el in cpu_els)
    records: list[CpuRecord] = []
    seen: set[int] = set()
    for el in cpu_els:
        cid = _int_attr(el, "id", source)
        assert cid is not None  # _cell_record refused a <cpu> without id
        if cid in seen:
            raise InputError(f"{source}: CPU {cid} is listed in two cells")
        seen.add(cid)
        has_details = el.get("siblings") is not None or el.get("core_id") is not None
        if detailed and not has_details:
            records.append(CpuRecord(id=cid, online=False, has_topology=False))
            continue
        sib_attr = el.get("siblings")
        records.append(
            CpuRecord(
                id=cid,
                has_topology=has_details,
                package_id=_int_attr(el, "socket_id", source),
                die_id=_int_attr(el, "die_id", source),
                cluster_id=_int_attr(el, "cluster_id", source),
                core_id=_int_attr(el, "core_id", source),
                siblings=CpuSet.parse(sib_attr, what=f"{source}:{el.sourceline}: siblings")
                if sib_attr
                else None,
                caches=tuple(b for b in banks if cid in b.cpus),
            )
        )
    return records


def capabilities_caps(text: str | bytes, source: str) -> HostCaps:
    """What ``virsh capabilities`` says about the host beyond topology: nesting (``HostCaps.nested``).

    Unknown (None) when the host CPU is not x86 (the CPUID hypervisor bit is an x86 thing) or names no
    model (the test driver and libvirt's own test files print no CPUID features).
    """
    root = parse_xml(text, source=source, root="capabilities").getroot()
    cpu_el = root.find("host/cpu")
    nested: bool | None = None
    x86 = _text(cpu_el, "arch") in ("x86_64", "i686")
    if cpu_el is not None and x86 and cpu_el.find("model") is not None:
        nested = any(f.get("name") == "hypervisor" for f in cpu_el.findall("feature"))
    return HostCaps(source=source, nested=nested)


def _banks(host: etree._Element, source: str) -> list[CacheRecord]:
    out = []
    for bank in host.findall("cache/bank"):
        level = _int_attr(bank, "level", source)
        if level is None or bank.get("type", "both") == "code":
            continue  # instruction side of CDP-split caches: not a sharing group of its own
        cpus_attr = bank.get("cpus")
        if not cpus_attr:
            raise InputError(f"{source}:{bank.sourceline}: <bank> without cpus")
        size = _size_kib(bank, source, size_attr=True)
        out.append(
            CacheRecord(
                level=level,
                cpus=CpuSet.parse(cpus_attr, what=f"{source}:{bank.sourceline}: bank cpus"),
                size_kib=int(size) if size is not None else None,
                cache_id=_int_attr(bank, "id", source),
            )
        )
    return out


def _base_page(cpu_el: etree._Element | None, source: str) -> int | None:
    """The system page size: the first ``host/cpu/pages`` (libvirt lists it before hugepage sizes)."""
    if cpu_el is None:
        return None
    first = cpu_el.find("pages")
    if first is None:
        return None
    size = _size_kib(first, source, size_attr=True)
    return int(size) if size is not None else None


def _text(parent: etree._Element | None, tag: str) -> str | None:
    if parent is None:
        return None
    el = parent.find(tag)
    return el.text.strip() if el is not None and el.text and el.text.strip() else None


def _int_attr(el: etree._Element, name: str, source: str) -> int | None:
    raw = el.get(name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        raise InputError(f"{source}:{el.sourceline}: <{el.tag} {name}={raw!r}> is not an integer") from None


def _int_text(el: etree._Element, source: str) -> int:
    raw = (el.text or "").strip()
    if not raw.isdigit():
        raise InputError(f"{source}:{el.sourceline}: <{el.tag}> should hold a number, found {raw[:40]!r}")
    return int(raw)


def _size_kib(el: etree._Element, source: str, *, size_attr: bool = False) -> float | None:
    """``<memory unit='KiB'>N</memory>`` or ``<pages unit='KiB' size='2048'>`` / ``<bank size unit>``."""
    unit = (el.get("unit") or "KiB").lower()
    unit_bytes = LIBVIRT_UNIT_BYTES.get(unit)
    if unit_bytes is None:
        raise InputError(f"{source}:{el.sourceline}: <{el.tag}> has unknown unit {unit!r}")
    raw = el.get("size") if size_attr else el.text
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit():
        raise InputError(f"{source}:{el.sourceline}: <{el.tag}> size {raw[:40]!r} is not a number")
    return int(raw) * unit_bytes / 1024
