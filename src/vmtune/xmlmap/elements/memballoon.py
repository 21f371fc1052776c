"""``<devices><memballoon>``: the balloon model and its virtio options."""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import Memballoon
from vmtune.core.plan import Plan
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import ONOFF, WORD, Attr, Fields, Reader, Record

__all__ = ["read", "write"]

DEVICES = "devices"
MEMBALLOON = Record(
    tag="memballoon",
    make=Memballoon,
    fields=(
        Attr(name="model", codec=WORD, default="virtio"),
        Attr(name="autodeflate", codec=ONOFF),
        Attr(name="freePageReporting", codec=ONOFF, field="freepage_reporting"),
    ),
)
MODEL, *OPTIONS = MEMBALLOON.fields
KEPT_WITHOUT_BALLOON = "alias"


def read(domain: etree._Element, r: Reader) -> Fields:
    devices = tree.child(domain, DEVICES)
    balloon = None if devices is None else tree.child(devices, MEMBALLOON.tag)
    return {} if balloon is None else {"memballoon": MEMBALLOON.read(r, balloon)}


def write(domain: etree._Element, plan: Plan) -> None:
    want = plan.memballoon
    if want is None:
        return
    devices = tree.ensure(domain, DEVICES)
    balloon = tree.child(devices, MEMBALLOON.tag)
    if balloon is None:
        balloon = tree.add(devices, MEMBALLOON.tag, {MODEL.name: want.model})
    if want.model != "none":
        MEMBALLOON.write(balloon, want)
        return
    MODEL.write(balloon, want.model)
    # libvirt rejects address/stats/driver options on a balloon that does not exist
    for sub in [c for c in balloon if tree.is_element(c) and c.tag != KEPT_WITHOUT_BALLOON]:
        tree.remove(sub)
    for option in OPTIONS:
        option.write(balloon, None)
