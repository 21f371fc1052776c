"""``<cputune><cachetune vcpus=>``: the cache ways (Intel RDT CAT / AMD L3 QoS) a guest's vCPUs get.

libvirt turns each ``<cachetune>`` with ``<cache>`` children into a resctrl group at start: it picks the
contiguous free ways for each ``size`` and writes the group's schemata (``src/util/virresctrl.c``).
A ``<cache>`` size defaults to KiB (libvirt's ``virDomainParseScaledValue`` with scale 1024); vmtune
writes KiB, or bytes when the size is not a whole KiB. ``<monitor>`` children are kept as they are.
"""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import CacheAlloc, CacheTune
from vmtune.core.plan import Plan
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.units import LIBVIRT_UNIT_BYTES
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import CPUS, INT, STR, Attr, Fields, Reader

__all__ = ["read", "write"]

PARENT = "cputune"
TAG = "cachetune"
CACHE = "cache"
VCPUS = Attr(name="vcpus", codec=CPUS, required=True)
CACHE_ID = Attr(name="id", codec=INT, required=True)
LEVEL = Attr(name="level", codec=INT, required=True)
TYPE = Attr(name="type", codec=STR, required=True)


def _size_bytes(r: Reader, elem: etree._Element) -> int:
    where = r.where(elem, "size")
    raw = elem.get("size")
    if raw is None:
        raise InputError(f"{where}: missing")
    factor = LIBVIRT_UNIT_BYTES.get(str(elem.get("unit") or "KiB").strip().lower())
    if factor is None:
        raise InputError(f"{r.where(elem, 'unit')}: unknown unit {elem.get('unit')!r}")
    text = str(raw).strip()
    if not text.isdigit():
        raise InputError(f"{where}: not a whole number: {text[:40]!r}")
    return int(text) * factor


def _read_one(r: Reader, elem: etree._Element) -> CacheTune:
    caches = tuple(
        CacheAlloc(id=CACHE_ID.need(r, c), level=LEVEL.need(r, c), type=TYPE.need(r, c),
                   size_bytes=_size_bytes(r, c))
        for c in tree.children(elem, CACHE)
    )  # fmt: skip
    return CacheTune(vcpus=VCPUS.need(r, elem), caches=caches)


def read(domain: etree._Element, r: Reader) -> Fields:
    cputune = tree.child(domain, PARENT)
    if cputune is None:
        return {}
    return {"cachetunes": tuple(_read_one(r, e) for e in tree.children(cputune, TAG))}


def _write_cache(elem: etree._Element, alloc: CacheAlloc) -> None:
    kib = alloc.size_bytes % 1024 == 0
    for name, value in (
        ("id", str(alloc.id)),
        ("level", str(alloc.level)),
        ("type", alloc.type),
        ("size", str(alloc.size_bytes // 1024 if kib else alloc.size_bytes)),
        ("unit", "KiB" if kib else "B"),
    ):
        tree.set_attr(elem, name, value)


def _write_one(elem: etree._Element, tune: CacheTune) -> None:
    old = elem.get("vcpus")
    if old is None or CpuSet.parse(str(old), what="cachetune vcpus") != tune.vcpus:
        # libvirt names the resctrl group after the id it derives from vcpus ('vcpus_0-3'); a stale one
        # would name another set of vCPUs
        tree.set_attr(elem, "id", None)
    VCPUS.write(elem, tune.vcpus)
    for child, alloc in zip(tree.replace_children(elem, CACHE, len(tune.caches)), tune.caches, strict=True):
        _write_cache(child, alloc)


def write(domain: etree._Element, plan: Plan) -> None:
    if plan.cachetunes is None:
        return
    cputune = tree.child(domain, PARENT)
    if cputune is None:
        if not plan.cachetunes:
            return
        cputune = tree.add(domain, PARENT)
    for elem, tune in zip(
        tree.replace_children(cputune, TAG, len(plan.cachetunes)), plan.cachetunes, strict=True
    ):
        _write_one(elem, tune)
    tree.drop_if_empty(cputune)
