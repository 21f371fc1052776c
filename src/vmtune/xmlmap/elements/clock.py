"""``<clock>``: the timers vmtune sets; timers the plan does not name are kept."""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import Timer
from vmtune.core.plan import Plan
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import STR, WORD, YESNO, Attr, Fields, Reader, Record

__all__ = ["read", "write"]

TAG = "clock"
NEW_CLOCK = {"offset": "utc"}
"""A guest without ``<clock>`` gets libvirt's own default offset spelled out."""
TIMER = Record(
    tag="timer",
    make=Timer,
    # libvirt prints name, present, tickpolicy in that order
    fields=(
        Attr(name="name", codec=WORD, default=""),
        Attr(name="present", codec=YESNO, keep_on_none=True),
        Attr(name="tickpolicy", codec=STR, keep_on_none=True),
    ),
)
NAME = TIMER.fields[0]
CATCHUP = "catchup"


def read(domain: etree._Element, r: Reader) -> Fields:
    clock = tree.child(domain, TAG)
    return {} if clock is None else {"timers": TIMER.read_all(r, clock)}


def write(domain: etree._Element, plan: Plan) -> None:
    if not plan.timers:
        return
    clock = tree.child(domain, TAG)
    if clock is None:
        clock = tree.add(domain, TAG, NEW_CLOCK)
    for timer in plan.timers:
        found = next((t for t in tree.children(clock, TIMER.tag) if t.get(NAME.name) == timer.name), None)
        if found is None:
            found = tree.add(clock, TIMER.tag, {NAME.name: timer.name})
        TIMER.write(found, timer)
        if timer.tickpolicy not in (None, CATCHUP):
            # <catchup threshold slew limit/> is only valid under tickpolicy='catchup' (schema)
            for sub in tree.children(found, CATCHUP):
                tree.remove(sub)
