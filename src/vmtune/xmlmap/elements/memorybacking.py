"""``<memoryBacking>``: hugepages (and their page size when the plan names one), locked, nosharepages."""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import MemoryBacking
from vmtune.core.plan import Plan
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
FLAGS = ("nosharepages", "locked")
"""Empty elements whose presence is the value; the model field has the element's name."""


def read(domain: etree._Element, r: Reader) -> Fields:
    mb = tree.child(domain, TAG)
    if mb is None:
        return {}
    huge = tree.child(mb, HUGEPAGES)
    page = None if huge is None else tree.child(huge, PAGE)
    values = {} if page is None else read_fields(r, page, PAGE_FIELDS)
    values |= {flag: tree.child(mb, flag) is not None for flag in FLAGS}
    return {"memory_backing": MemoryBacking(hugepages=huge is not None, **values)}


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
