"""``<numatune>``: which host NUMA nodes back the guest's memory, overall and per guest cell."""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import MemNode
from vmtune.core.plan import Plan
from vmtune.cpuset import CpuSet
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import (
    CPUS,
    CPUS_OR_ALL,
    INT,
    STR,
    WORD,
    Attr,
    Fields,
    Reader,
    Record,
    read_fields,
    write_fields,
)

__all__ = ["read", "write"]

TAG = "numatune"
MEMORY = "memory"
MODE = Attr(name="mode", codec=WORD, default="strict")
NODESET = Attr(name="nodeset", codec=CPUS_OR_ALL)
PLACEMENT = Attr(name="placement", codec=STR)
MEMNODE = Record(
    tag="memnode",
    make=MemNode,
    fields=(
        Attr(name="cellid", codec=INT, required=True),
        Attr(name="mode", codec=WORD, default="strict"),
        Attr(name="nodeset", codec=CPUS, default=CpuSet()),
    ),
)
PREFIX = "numatune_"
"""GuestSpec names the ``<memory>`` attributes ``numatune_mode``, ``numatune_nodeset``..."""


def read(domain: etree._Element, r: Reader) -> Fields:
    numatune = tree.child(domain, TAG)
    if numatune is None:
        return {}
    memory = tree.child(numatune, MEMORY)
    fields: Fields = {}
    if memory is not None:
        values = read_fields(r, memory, (MODE, NODESET, PLACEMENT))
        fields = {PREFIX + key: value for key, value in values.items()}
    return fields | {"memnodes": MEMNODE.read_all(r, numatune)}


def write(domain: etree._Element, plan: Plan) -> None:
    if plan.numatune is None:
        _keep_auto(domain, plan)
        return
    numatune = tree.ensure(domain, TAG)
    memory = tree.ensure(numatune, MEMORY)
    # placement='auto' asks numad for a nodeset and conflicts with an explicit one
    if memory.get(PLACEMENT.name) == "auto":
        PLACEMENT.write(memory, None)
    write_fields(memory, (MODE, NODESET), plan.numatune)
    MEMNODE.write_all(numatune, sorted(plan.numatune.memnodes, key=lambda m: m.cellid))


def _keep_auto(domain: etree._Element, plan: Plan) -> None:
    """A ``<memory>`` with neither nodeset nor placement follows ``<vcpu placement>``: once the plan makes
    that static, say ``auto`` out loud, or libvirt asks for a nodeset the guest never had."""
    numatune = tree.child(domain, TAG)
    memory = None if numatune is None else tree.child(numatune, MEMORY)
    if memory is None or plan.vcpu_placement != "static":
        return
    if memory.get(NODESET.name) is None and memory.get(PLACEMENT.name) is None:
        PLACEMENT.write(memory, "auto")
