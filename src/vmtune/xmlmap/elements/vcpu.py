"""``<vcpu>``: how many vCPUs the guest has and where they may run.

The count is the guest's; vmtune only raises the maximum of a guest it shapes afresh to whole host
cores, keeping ``current`` (``Plan.vcpu_slots``), so the topology can tell the truth about siblings.
"""

from __future__ import annotations

from lxml import etree

from vmtune.core.plan import Plan
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import CPUS_OR_ALL, INT, STR, Attr, Fields, Reader, read_fields, write_fields

__all__ = ["count", "read", "write"]

TAG = "vcpu"
CURRENT = Attr(name="current", codec=INT, field="current_vcpus")
PLACEMENT = Attr(name="placement", codec=STR, field="vcpu_placement", keep_on_none=True)
CPUSET = Attr(name="cpuset", codec=CPUS_OR_ALL, field="vcpu_cpuset", keep_on_none=True)
WRITTEN = (PLACEMENT, CPUSET)


def count(domain: etree._Element, r: Reader) -> int:
    """The maximum vCPU count (the element's text); libvirt's default is one."""
    vcpu = tree.child(domain, TAG)
    return 1 if vcpu is None else r.text_int(vcpu)


def read(domain: etree._Element, r: Reader) -> Fields:
    vcpu = tree.child(domain, TAG)
    fields: Fields = {"vcpus": count(domain, r)}
    return fields if vcpu is None else fields | read_fields(r, vcpu, (CURRENT, *WRITTEN))


def write(domain: etree._Element, plan: Plan) -> None:
    if all(getattr(plan, a.key) is None for a in WRITTEN) and plan.vcpu_slots is None:
        return
    vcpu = tree.child(domain, TAG)
    if vcpu is None:
        vcpu = tree.add(domain, TAG, text="1")
    if plan.vcpu_slots is not None:
        vcpu.text = str(plan.vcpu_slots)
        tree.set_attr(vcpu, CURRENT.name, None if plan.vcpu_current is None else str(plan.vcpu_current))
    write_fields(vcpu, WRITTEN, plan)
