"""One module per element vmtune owns; each declares its XPaths and attributes once, next to the
``read(domain, reader) -> GuestSpec fields`` and ``write(domain, plan)`` that both use them.

``OWNED`` is in libvirt's document order, which is also the order ``apply_plan`` writes in and
``read_guest`` reads in, so the first bad value reported is the first in the file.
"""

from __future__ import annotations

from typing import Protocol

from lxml import etree

from vmtune.core.plan import Plan
from vmtune.xmlmap.elements import (
    cachetune,
    clock,
    cpu,
    cputune,
    disks,
    domain,
    features,
    intent,
    iothreads,
    memballoon,
    memorybacking,
    numatune,
    vcpu,
)
from vmtune.xmlmap.elements.view import Fields, Reader

__all__ = ["OWNED", "READ", "Owned", "Readable"]


class Readable(Protocol):
    def read(self, domain: etree._Element, r: Reader) -> Fields: ...


class Owned(Readable, Protocol):
    def write(self, domain: etree._Element, plan: Plan) -> None: ...


OWNED: tuple[Owned, ...] = (
    intent,
    memorybacking,
    vcpu,
    iothreads,
    cputune,
    cachetune,
    numatune,
    features,
    cpu,
    clock,
    disks,
    memballoon,
)
READ: tuple[Readable, ...] = (domain, *OWNED)
"""The facts vmtune never writes come first; ``GuestSpec`` is built from the union of these fields."""
