"""``<iothreads>``: the number of I/O threads, whose pins live in ``<cputune>``."""

from __future__ import annotations

from lxml import etree

from vmtune.core.plan import Plan
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import Fields, Reader

__all__ = ["read", "write"]

TAG = "iothreads"


def read(domain: etree._Element, r: Reader) -> Fields:
    elem = tree.child(domain, TAG)
    return {} if elem is None else {"iothreads": r.text_int(elem)}


def write(domain: etree._Element, plan: Plan) -> None:
    if plan.iothreads is None:
        return
    elem = tree.toggle(domain, TAG, plan.iothreads > 0)
    if elem is not None and (elem.text or "").strip() != str(plan.iothreads):
        elem.text = str(plan.iothreads)
