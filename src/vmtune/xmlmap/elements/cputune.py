"""``<cputune>``: the pins and scheduler classes of the guest's vCPU, emulator and I/O threads.

Each child is declared once below; ``read`` and ``write`` walk the same declarations. Elements vmtune
does not model (``<shares>``, ``<memorytune>``...) are never touched; ``<cachetune>`` has its own module.
"""

from __future__ import annotations

from typing import TypeVar

from lxml import etree

from vmtune.core.guest import EmulatorSched, IOThreadPin, IOThreadSched, VcpuPin, VcpuSched
from vmtune.core.plan import Plan
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements import vcpu
from vmtune.xmlmap.elements.view import CPUS, INT, WORD, Attr, Fields, Reader, Record

__all__ = ["read", "write"]

T = TypeVar("T")

TAG = "cputune"
VCPU_ID = Attr(name="vcpu", codec=INT, required=True)
VCPUPIN = Record(
    tag="vcpupin",
    make=VcpuPin,
    fields=(
        VCPU_ID,
        Attr(name="cpuset", codec=CPUS, field="cpus", required=True),
    ),
)
EMULATORPIN = "emulatorpin"
EMULATORPIN_CPUS = Attr(name="cpuset", codec=CPUS)
IOTHREADPIN = Record(
    tag="iothreadpin",
    make=IOThreadPin,
    fields=(
        Attr(name="iothread", codec=INT, required=True),
        Attr(name="cpuset", codec=CPUS, field="cpus", default=CpuSet()),
    ),
)
EMULATORSCHED = Record(
    tag="emulatorsched",
    make=EmulatorSched,
    fields=(
        Attr(name="scheduler", codec=WORD, default=""),
        Attr(name="priority", codec=INT),
    ),
)
IOTHREADSCHED = Record(
    tag="iothreadsched",
    make=IOThreadSched,
    fields=(
        Attr(name="iothreads", codec=CPUS, default=CpuSet()),
        Attr(name="scheduler", codec=WORD, default=""),
        Attr(name="priority", codec=INT),
    ),
)
VCPUSCHED = Record(
    tag="vcpusched",
    make=VcpuSched,
    fields=(
        Attr(name="vcpus", codec=CPUS, default=CpuSet()),
        Attr(name="scheduler", codec=WORD, default=""),
        Attr(name="priority", codec=INT),
    ),
)
PLAN_FIELDS = ("vcpupins", "emulatorpin", "iothreadpins", "vcpusched", "emulatorsched", "iothreadsched")


def read(domain: etree._Element, r: Reader) -> Fields:
    cputune = tree.child(domain, TAG)
    if cputune is None:
        return {}
    emulatorpin = tree.child(cputune, EMULATORPIN)
    return {
        "vcpupins": _vcpupins(cputune, r, vcpu.count(domain, r)),
        "emulatorpin": None if emulatorpin is None else EMULATORPIN_CPUS.read(r, emulatorpin),
        "iothreadpins": IOTHREADPIN.read_all(r, cputune),
        "vcpusched": VCPUSCHED.read_all(r, cputune),
        "emulatorsched": next(iter(EMULATORSCHED.read_all(r, cputune)), None),
        "iothreadsched": IOTHREADSCHED.read_all(r, cputune),
    }


def _vcpupins(cputune: etree._Element, r: Reader, vcpus: int) -> tuple[VcpuPin, ...]:
    """The pins by vCPU id; a duplicate or out-of-range vCPU is an error libvirt would also raise."""
    pins: dict[int, VcpuPin] = {}
    for elem in tree.children(cputune, VCPUPIN.tag):
        vcpu_id = VCPU_ID.need(r, elem)
        if vcpu_id in pins:
            raise InputError(f"{r.where(elem)}: duplicate vcpupin for vCPU {vcpu_id}")
        if not 0 <= vcpu_id < vcpus:
            raise InputError(f"{r.where(elem, VCPU_ID.name)}: vCPU {vcpu_id} beyond the {vcpus} vCPUs")
        pins[vcpu_id] = VCPUPIN.read(r, elem)
    return tuple(pins[v] for v in sorted(pins))


def write(domain: etree._Element, plan: Plan) -> None:
    if all(getattr(plan, name) is None for name in PLAN_FIELDS):
        return
    cputune = tree.child(domain, TAG)
    if cputune is None:
        cputune = tree.add(domain, TAG)
    if plan.vcpupins is not None:
        VCPUPIN.write_all(cputune, sorted(plan.vcpupins, key=lambda p: p.vcpu))
    if plan.emulatorpin is not None:
        _single(cputune, EMULATORPIN, EMULATORPIN_CPUS, plan.emulatorpin or None)
    if plan.iothreadpins is not None:
        IOTHREADPIN.write_all(cputune, sorted(plan.iothreadpins, key=lambda p: p.iothread))
    if plan.emulatorsched is not None:
        EMULATORSCHED.write_all(cputune, [plan.emulatorsched])
    if plan.vcpusched is not None:
        VCPUSCHED.write_all(cputune, plan.vcpusched)
    if plan.iothreadsched is not None:
        IOTHREADSCHED.write_all(cputune, plan.iothreadsched)
    tree.drop_if_empty(cputune)


def _single(parent: etree._Element, tag: str, attr: Attr[T], value: T | None) -> None:
    """Make exactly one ``<tag>`` carrying ``value`` in ``attr``; an empty value removes them all."""
    found = tree.children(parent, tag)
    if value is None:
        for elem in found:
            tree.remove(elem)
        return
    for extra in found[1:]:
        tree.remove(extra)
    attr.write(found[0] if found else tree.add(parent, tag), value)
