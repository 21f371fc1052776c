"""Apply a Plan to a domain tree, editing only the elements vmtune owns (DESIGN.md: the tree is the truth).

``None`` plan fields leave their element alone; every other byte of the file keeps its meaning (comments,
PIs, CDATA, unknown elements and attributes, foreign ``<metadata>``). Existing owned elements are updated in
place (so a second application is a no-op); missing ones are inserted in libvirt's canonical order with the
file's own indentation (``vmtune.xmlmap.tree``). Sections emptied by the plan are removed, as libvirt's own
formatter drops an empty ``<cputune/>``. Each element's writer lives in ``vmtune.xmlmap.elements``.
"""

from __future__ import annotations

import copy

from lxml import etree

from vmtune.core.plan import Plan
from vmtune.errors import InputError
from vmtune.xmlmap.elements import OWNED

__all__ = ["apply_plan"]


def apply_plan(doc: etree._ElementTree, plan: Plan) -> etree._ElementTree:
    """Return a new tree: ``doc`` with ``plan`` applied (``doc`` itself is not modified)."""
    out = copy.deepcopy(doc)
    root = out.getroot()
    if root.tag != "domain":
        raise InputError(f"root element is <{root.tag}>, expected <domain>")
    for element in OWNED:
        element.write(root, plan)
    return out
