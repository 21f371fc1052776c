"""vmtune's own ``<metadata>`` entry, as an element module (the format lives in ``xmlmap.metadata``)."""

from __future__ import annotations

from lxml import etree

from vmtune.core.plan import Plan
from vmtune.xmlmap.elements.view import Fields, Reader
from vmtune.xmlmap.metadata import read_intent, write_intent

__all__ = ["read", "write"]


def read(domain: etree._Element, r: Reader) -> Fields:
    return {"intent": read_intent(domain, r.source)}


def write(domain: etree._Element, plan: Plan) -> None:
    if plan.intent is not None:
        write_intent(domain, plan.intent)
