"""``<memoryBacking>``: hugepages (and their page size when the plan names one), locked, nosharepages.

A 4 KiB ``<page>`` reads as normal pages (``NORMAL_PAGE_KIB``).
"""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import MemoryBacking
from vmtune.core.plan import Plan
from vmtune.cpuset import CpuSet
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import CPUS, Attr, Fields, Reader, Size, read_fields, write_fields

__all__ = ["read", "write"]

TAG = "memoryBacking"
HUGEPAGES = "hugepages"
PAGE = "page"
PAGE_FIELDS = (
    Size(name="size", field="page_size_kib"),
    Attr(name="nodeset", codec=CPUS, field="page_nodeset"),
)
NORMAL_PAGE_KIB = 4
"""A ``<page>`` of this size is the base page libvirt accepts as "no hugepages" (the smallest base page of
any KVM architecture), so it reads as normal pages, not as a hugepage pool of 4 KiB pages."""
FLAGS = ("nosharepages", "locked")
"""Empty elements whose presence is the value; the model field has the element's name."""


def read(domain: etree._Element, r: Reader) -> Fields:
    mb = tree.child(domain, TAG)
    if mb is None:
        return {}
    huge = tree.child(mb, HUGEPAGES)
    page = None if huge is None else tree.child(huge, PAGE)
    values = {} if page is None else read_fields(r, page, PAGE_FIELDS)
    normal = values.get("page_size_kib") == NORMAL_PAGE_KIB
    if normal:
        values = {}
    values |= {flag: tree.child(mb, flag) is not None for flag in FLAGS}
    fields: Fields = {"memory_backing": MemoryBacking(hugepages=huge is not None and not normal, **values)}
    pages = () if huge is None else tree.children(huge, PAGE)
    cells = CpuSet().union(*(r.cpuset(page, "nodeset") or CpuSet() for page in pages))
    if cells:
        fields["hugepage_cells"] = cells
    return fields


def write(domain: etree._Element, plan: Plan) -> None:
    want = plan.memory_backing
    if want is None:
        return
    mb = tree.child(domain, TAG)
    if mb is None:
        if not (want.hugepages or any(getattr(want, flag) for flag in FLAGS)):
            return
        mb = tree.add(domain, TAG)
    huge = tree.toggle(mb, HUGEPAGES, want.hugepages)
    if huge is not None:
        # no page size: the host's default hugepage size, which libvirt spells as no <page> at all
        keep = 0 if want.page_size_kib is None else 1
        for page in tree.replace_children(huge, PAGE, keep):
            write_fields(page, PAGE_FIELDS, want)
    for flag in FLAGS:
        tree.toggle(mb, flag, getattr(want, flag))
    tree.drop_if_empty(mb)
