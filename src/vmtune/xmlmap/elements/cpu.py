"""``<cpu>``: the CPU mode, the guest topology, its NUMA cells and required CPU features.

``<model>``, ``<cache>`` and features the plan does not name are kept; only a mode change removes what
libvirt would reject under the new mode.
"""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from vmtune.core.guest import GuestTopology, NumaCell
from vmtune.core.plan import CpuPlan, Plan
from vmtune.cpuset import CpuSet
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import (
    COUNT,
    CPUS,
    INT,
    STR,
    WORD,
    YESNO,
    Attr,
    Fields,
    Reader,
    Record,
    Size,
)

__all__ = ["read", "write"]

TAG = "cpu"
MODE = Attr(name="mode", codec=WORD, default="custom")
CHECK = Attr(name="check", codec=STR, keep_on_none=True)
MATCH = Attr(name="match", codec=STR)
MODEL = "model"
VENDOR = "vendor"
TOPOLOGY = Record(
    tag="topology",
    make=GuestTopology,
    fields=(
        Attr(name="sockets", codec=COUNT, default=1),
        Attr(name="dies", codec=COUNT, default=1, implied=1),
        Attr(name="clusters", codec=COUNT, default=1, implied=1),
        Attr(name="cores", codec=COUNT, default=1),
        Attr(name="threads", codec=COUNT, default=1),
    ),
)
NUMA = "numa"
CELL = Record(
    tag="cell",
    make=NumaCell,
    fields=(
        Attr(name="id", codec=INT),
        Attr(name="cpus", codec=CPUS, default=CpuSet()),
        Size(name="memory", field="memory_kib", default=0, blame_element=True),
        Attr(name="memAccess", codec=WORD, field="mem_access"),
        Attr(name="discard", codec=YESNO),
    ),
)
DISTANCES = "distances"
SIBLING_ID = Attr(name="id", codec=INT)
SIBLING_VALUE = Attr(name="value", codec=INT)
FEATURE = "feature"
POLICY = Attr(name="policy", codec=WORD, default="require")
NAME = Attr(name="name", codec=WORD, default="")


def read(domain: etree._Element, r: Reader) -> Fields:
    cpu = tree.child(domain, TAG)
    if cpu is None:
        return {}
    model = tree.child(cpu, MODEL)
    topology = tree.child(cpu, TOPOLOGY.tag)
    numa = tree.child(cpu, NUMA)
    cells = () if numa is None else tree.children(numa, CELL.tag)
    return {
        "cpu_mode": MODE.read(r, cpu),
        "cpu_model": None if model is None else (model.text or "").strip() or None,
        "topology": None if topology is None else TOPOLOGY.read(r, topology),
        # a cell without an id is numbered by its position, as libvirt numbers it
        "numa_cells": tuple(
            replace(CELL.read(r, cell, id=i), distances=_distances(cell, r)) for i, cell in enumerate(cells)
        ),
        "cpu_features": tuple((POLICY.read(r, f), NAME.read(r, f)) for f in tree.children(cpu, FEATURE)),
    }


def _distances(cell: etree._Element, r: Reader) -> tuple[tuple[int, int], ...]:
    dist = tree.child(cell, DISTANCES)
    siblings = () if dist is None else tree.children(dist, "sibling")
    return tuple((SIBLING_ID.need(r, s), SIBLING_VALUE.need(r, s)) for s in siblings)


def write(domain: etree._Element, plan: Plan) -> None:
    if plan.cpu is None:
        return
    cpu = tree.child(domain, TAG)
    if cpu is None:
        cpu = tree.add(domain, TAG)
    want = plan.cpu
    if want.mode is not None:
        _mode(cpu, want.mode)
    CHECK.write(cpu, want.check)
    if want.topology is not None:
        TOPOLOGY.write(tree.ensure(cpu, TOPOLOGY.tag), want.topology)
    _features(cpu, want)
    if want.numa_cells is not None:
        numa = tree.toggle(cpu, NUMA, bool(want.numa_cells))
        if numa is not None:
            if len(tree.children(numa, CELL.tag)) != len(want.numa_cells):
                # a cell's <distances> name the other cells: a new cell count makes them wrong
                for cell in tree.children(numa, CELL.tag):
                    for dist in tree.children(cell, DISTANCES):
                        tree.remove(dist)
            cells = sorted(want.numa_cells, key=lambda c: c.id)
            CELL.write_all(numa, cells)
            for elem, want_cell in zip(tree.children(numa, CELL.tag), cells, strict=True):
                if want_cell.distances:
                    _write_distances(elem, want_cell.distances)


def _write_distances(cell: etree._Element, distances: tuple[tuple[int, int], ...]) -> None:
    """``<distances><sibling id= value=/>`` for every cell: libvirt/QEMU take the guest's SLIT from them."""
    dist = tree.ensure(cell, DISTANCES)
    for sib, (cell_id, value) in zip(
        tree.replace_children(dist, "sibling", len(distances)), distances, strict=True
    ):
        SIBLING_ID.write(sib, cell_id)
        SIBLING_VALUE.write(sib, value)


def _mode(cpu: etree._Element, mode: str) -> None:
    MODE.write(cpu, mode)
    if mode in ("host-passthrough", "maximum"):
        # libvirt rejects a named <model>/<vendor> (and ignores @match) outside custom/host-model mode
        for tag in (MODEL, VENDOR):
            for elem in tree.children(cpu, tag):
                if (elem.text or "").strip() or tag == VENDOR:
                    tree.remove(elem)
        MATCH.write(cpu, None)
    elif mode == "host-model":
        for elem in tree.children(cpu, VENDOR):
            tree.remove(elem)
        MATCH.write(cpu, None)


def _features(cpu: etree._Element, want: CpuPlan) -> None:
    """Ensure each (policy, name) pair; features the plan does not name are kept."""
    for policy, name in want.features:
        found = next((f for f in tree.children(cpu, FEATURE) if f.get(NAME.name) == name), None)
        if found is None:
            found = tree.add(cpu, FEATURE)
        POLICY.write(found, policy)
        NAME.write(found, name)
