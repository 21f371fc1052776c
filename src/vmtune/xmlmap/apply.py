"""Apply a Plan to a domain tree, editing only the elements vmtune owns (DESIGN.md: the tree is the truth).

``None`` plan fields leave their element alone; every other byte of the file keeps its meaning (comments,
PIs, CDATA, unknown elements and attributes, foreign ``<metadata>``). Existing owned elements are updated in
place (so a second application is a no-op); missing ones are inserted in libvirt's canonical order with the
file's own indentation (``vmtune.xmlmap.tree``). Sections emptied by the plan are removed, as libvirt's own
formatter drops an empty ``<cputune/>``.
"""

from __future__ import annotations

import copy

from lxml import etree

from vmtune.core.guest import Memballoon, MemoryBacking
from vmtune.core.plan import NumaTunePlan, Plan
from vmtune.errors import InputError
from vmtune.xmlmap import tree
from vmtune.xmlmap.apply_cpu import apply_clock, apply_cpu, apply_features
from vmtune.xmlmap.metadata import write_intent

__all__ = ["apply_plan"]

Element = etree._Element


def apply_plan(doc: etree._ElementTree, plan: Plan) -> etree._ElementTree:
    """Return a new tree: ``doc`` with ``plan`` applied (``doc`` itself is not modified)."""
    out = copy.deepcopy(doc)
    root = out.getroot()
    if root.tag != "domain":
        raise InputError(f"root element is <{root.tag}>, expected <domain>")
    if plan.intent is not None:
        write_intent(root, plan.intent)
    if plan.memory_backing is not None:
        _memory_backing(root, plan.memory_backing)
    if plan.vcpu_placement is not None or plan.vcpu_cpuset is not None:
        _vcpu(root, plan)
    if plan.iothreads is not None:
        _iothreads(root, plan.iothreads)
    _cputune(root, plan)
    if plan.numatune is not None:
        _numatune(root, plan.numatune)
    if plan.features is not None:
        apply_features(root, plan.features)
    if plan.cpu is not None:
        apply_cpu(root, plan.cpu)
    if plan.timers is not None:
        apply_clock(root, plan.timers)
    if plan.memballoon is not None:
        _memballoon(root, plan.memballoon)
    return out


def _drop_if_empty(elem: Element) -> None:
    """Remove a section left with no children, attributes or text (comments inside keep it)."""
    if len(elem) == 0 and not elem.attrib and not (elem.text or "").strip():
        tree.remove(elem)


def _vcpu(root: Element, plan: Plan) -> None:
    vcpu = tree.child(root, "vcpu")
    if vcpu is None:
        vcpu = tree.add(root, "vcpu", text="1")
    if plan.vcpu_placement is not None:
        tree.set_attr(vcpu, "placement", plan.vcpu_placement)
    if plan.vcpu_cpuset is not None:
        # an empty set means "no restriction": libvirt rejects cpuset=''
        tree.set_attr(vcpu, "cpuset", str(plan.vcpu_cpuset) or None)


def _iothreads(root: Element, count: int) -> None:
    elem = tree.toggle(root, "iothreads", count > 0)
    if elem is not None and (elem.text or "").strip() != str(count):
        elem.text = str(count)


def _cputune(root: Element, plan: Plan) -> None:
    fields = (plan.vcpupins, plan.emulatorpin, plan.iothreadpins, plan.vcpusched, plan.emulatorsched)
    if all(f is None for f in fields):
        return
    cputune = tree.child(root, "cputune")
    if cputune is None:
        cputune = tree.add(root, "cputune")
    if plan.vcpupins is not None:
        pins = sorted(plan.vcpupins, key=lambda p: p.vcpu)
        for elem, pin in zip(tree.replace_children(cputune, "vcpupin", len(pins)), pins, strict=True):
            tree.set_attr(elem, "vcpu", str(pin.vcpu))
            tree.set_attr(elem, "cpuset", str(pin.cpus))
    if plan.emulatorpin is not None:
        _single(cputune, "emulatorpin", {"cpuset": str(plan.emulatorpin)} if plan.emulatorpin else None)
    if plan.iothreadpins is not None:
        iopins = sorted(plan.iothreadpins, key=lambda p: p.iothread)
        for elem, iopin in zip(
            tree.replace_children(cputune, "iothreadpin", len(iopins)), iopins, strict=True
        ):
            tree.set_attr(elem, "iothread", str(iopin.iothread))
            tree.set_attr(elem, "cpuset", str(iopin.cpus))
    if plan.emulatorsched is not None:
        _single(cputune, "emulatorsched", {"scheduler": plan.emulatorsched} if plan.emulatorsched else None)
    if plan.vcpusched is not None:
        scheds = plan.vcpusched
        for elem, sched in zip(tree.replace_children(cputune, "vcpusched", len(scheds)), scheds, strict=True):
            tree.set_attr(elem, "vcpus", str(sched.vcpus))
            tree.set_attr(elem, "scheduler", sched.scheduler)
            tree.set_attr(elem, "priority", None if sched.priority is None else str(sched.priority))
    _drop_if_empty(cputune)


def _single(parent: Element, tag: str, attrs: dict[str, str] | None) -> None:
    """Make exactly one ``<tag attrs>`` (attrs None: none at all)."""
    found = tree.children(parent, tag)
    if attrs is None:
        for elem in found:
            tree.remove(elem)
        return
    for extra in found[1:]:
        tree.remove(extra)
    elem = found[0] if found else tree.add(parent, tag)
    for key, value in attrs.items():
        tree.set_attr(elem, key, value)


def _numatune(root: Element, plan: NumaTunePlan) -> None:
    numatune = tree.ensure(root, "numatune")
    memory = tree.ensure(numatune, "memory")
    tree.set_attr(memory, "mode", plan.mode)
    # placement='auto' asks numad for a nodeset and conflicts with an explicit one
    if memory.get("placement") == "auto":
        tree.set_attr(memory, "placement", None)
    tree.set_attr(memory, "nodeset", str(plan.nodeset) or None)
    nodes = sorted(plan.memnodes, key=lambda m: m.cellid)
    for elem, node in zip(tree.replace_children(numatune, "memnode", len(nodes)), nodes, strict=True):
        tree.set_attr(elem, "cellid", str(node.cellid))
        tree.set_attr(elem, "mode", node.mode)
        tree.set_attr(elem, "nodeset", str(node.nodeset))


def _memory_backing(root: Element, want: MemoryBacking) -> None:
    mb = tree.child(root, "memoryBacking")
    if mb is None:
        if not (want.hugepages or want.locked or want.nosharepages):
            return
        mb = tree.add(root, "memoryBacking")
    huge = tree.toggle(mb, "hugepages", want.hugepages)
    if huge is not None:
        if want.page_size_kib is None:
            for page in tree.children(huge, "page"):
                tree.remove(page)
        else:
            pages = list(tree.replace_children(huge, "page", 1))
            tree.set_attr(pages[0], "size", str(want.page_size_kib))
            tree.set_attr(pages[0], "unit", "KiB")
            nodeset = want.page_nodeset
            tree.set_attr(pages[0], "nodeset", None if nodeset is None else str(nodeset))
    for tag, wanted in (("nosharepages", want.nosharepages), ("locked", want.locked)):
        tree.toggle(mb, tag, wanted)
    _drop_if_empty(mb)


def _memballoon(root: Element, want: Memballoon) -> None:
    devices = tree.ensure(root, "devices")
    balloon = tree.child(devices, "memballoon")
    if balloon is None:
        balloon = tree.add(devices, "memballoon", {"model": want.model})
    tree.set_attr(balloon, "model", want.model)
    if want.model == "none":
        # libvirt rejects address/stats/driver options on a balloon that does not exist
        for sub in [c for c in balloon if tree.is_element(c) and c.tag != "alias"]:
            tree.remove(sub)
        for key in ("autodeflate", "freePageReporting"):
            tree.set_attr(balloon, key, None)
        return
    onoff = {True: "on", False: "off", None: None}
    tree.set_attr(balloon, "autodeflate", onoff[want.autodeflate])
    tree.set_attr(balloon, "freePageReporting", onoff[want.freepage_reporting])
