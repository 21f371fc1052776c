"""``<iothreads>``: the number of I/O threads, whose pins live in ``<cputune>``; the ids ``<iothreadids>``
lists are read (libvirt numbers the rest), never written."""

from __future__ import annotations

from lxml import etree

from vmtune.core.plan import Plan
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import Fields, Reader

__all__ = ["read", "write"]

TAG = "iothreads"


def read(domain: etree._Element, r: Reader) -> Fields:
    elem = tree.child(domain, TAG)
    fields: Fields = {} if elem is None else {"iothreads": r.text_int(elem)}
    listed = tree.child(domain, "iothreadids")
    ids = [r.int_attr(e, "id") for e in listed.iterfind("iothread")] if listed is not None else []
    if ids:
        fields["iothread_given_ids"] = tuple(i for i in ids if i is not None)
    return fields


def write(domain: etree._Element, plan: Plan) -> None:
    if plan.iothreads is None:
        return
    elem = tree.toggle(domain, TAG, plan.iothreads > 0)
    if elem is not None and (elem.text or "").strip() != str(plan.iothreads):
        elem.text = str(plan.iothreads)
