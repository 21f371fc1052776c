"""``<features>``: APIC, the Hyper-V enlightenments, the PMU and the KVM switches vmtune manages."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from vmtune.core.guest import HypervFeature
from vmtune.core.plan import FeaturesPlan, Plan
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import ON, ONOFF, WORD, Attr, Fields, Reader
from vmtune.xmlmap.order import rank

__all__ = ["read", "write"]

Element = etree._Element

TAG = "features"
APIC = "apic"
HYPERV = "hyperv"
HYPERV_MODE = Attr(name="mode", codec=WORD, default="custom")
HYPERV_STATE = Attr(name="state", codec=ON, default=True)
STATE = Attr(name="state", codec=ONOFF)


@dataclass(frozen=True, slots=True, kw_only=True)
class Switch:
    """An on/off ``state`` at ``path`` under ``<features>``, mapped to one model field."""

    field: str
    path: tuple[str, ...]


SWITCHES = (
    Switch(field="kvm_hidden", path=("kvm", "hidden")),
    Switch(field="kvm_hint_dedicated", path=("kvm", "hint-dedicated")),
    Switch(field="pmu", path=("pmu",)),
)


def read(domain: Element, r: Reader) -> Fields:
    features = tree.child(domain, TAG)
    if features is None:
        return {}
    fields: Fields = {"apic": tree.child(features, APIC) is not None}
    hyperv = tree.child(features, HYPERV)
    if hyperv is not None:
        fields |= {"hyperv_mode": HYPERV_MODE.read(r, hyperv), "hyperv": _hyperv(r, hyperv)}
    for switch in SWITCHES:
        elem: Element | None = features
        for tag in switch.path:
            elem = None if elem is None else tree.child(elem, tag)
        fields[switch.field] = None if elem is None else STATE.read(r, elem)
    return fields


def _hyperv(r: Reader, hyperv: Element) -> tuple[HypervFeature, ...]:
    """Every child, modelled or not, so a plan can keep the ones it does not know."""
    feats = []
    for item in hyperv:
        if not tree.is_element(item):
            continue
        attrs = tuple((str(k), str(v)) for k, v in item.attrib.items() if k != HYPERV_STATE.name)
        subs = tuple(str(s.tag) for s in item if tree.is_element(s) and HYPERV_STATE.read(r, s))
        feats.append(
            HypervFeature(
                name=str(item.tag), state=bool(HYPERV_STATE.read(r, item)), attrs=attrs, children=subs
            )
        )
    return tuple(feats)


def write(domain: Element, plan: Plan) -> None:
    want = plan.features
    if want is None:
        return
    features = tree.child(domain, TAG)
    if features is None:
        if _noop(want):
            return
        features = tree.add(domain, TAG)
    if want.apic is not None:
        tree.toggle(features, APIC, want.apic)
    if want.hyperv is not None:
        _write_hyperv(features, want.hyperv)
    for switch in SWITCHES:
        value = getattr(want, switch.field)
        if value is None:
            continue
        elem = features
        for tag in switch.path:
            elem = tree.ensure(elem, tag)
        STATE.write(elem, value)


def _noop(want: FeaturesPlan) -> bool:
    """True when the plan would only switch things off that a missing ``<features>`` already lacks."""
    return not want.apic and not want.hyperv and all(getattr(want, s.field) is None for s in SWITCHES)


def _write_hyperv(features: Element, want: tuple[HypervFeature, ...]) -> None:
    hyperv = tree.toggle(features, HYPERV, bool(want), {HYPERV_MODE.name: "custom"})
    if hyperv is None:
        return
    if hyperv.get(HYPERV_MODE.name) not in (None, "custom"):
        # mode='passthrough' enables everything and forbids listing children; the plan lists them
        HYPERV_MODE.write(hyperv, "custom")
    names = {f.name for f in want}
    for old in [c for c in hyperv if tree.is_element(c) and c.tag not in names]:
        tree.remove(old)
    ordered = sorted(want, key=lambda f: (rank(HYPERV, f.name) is None, rank(HYPERV, f.name) or 0))
    for feat in ordered:
        elem = tree.ensure(hyperv, feat.name)
        HYPERV_STATE.write(elem, feat.state)
        wanted_attrs = dict(feat.attrs)
        for key in [k for k in elem.attrib if k != HYPERV_STATE.name and k not in wanted_attrs]:
            del elem.attrib[str(key)]
        for key, value in feat.attrs:
            tree.set_attr(elem, key, value)
        subs = set(feat.children)
        for sub in [c for c in elem if tree.is_element(c) and c.tag not in subs]:
            tree.remove(sub)
        for name in feat.children:
            HYPERV_STATE.write(tree.ensure(elem, name), True)
