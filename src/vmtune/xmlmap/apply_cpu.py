"""Apply the ``<cpu>``, ``<features>`` and ``<clock>`` parts of a Plan (see ``vmtune.xmlmap.apply``)."""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import GuestTopology, HypervFeature, NumaCell, Timer
from vmtune.core.plan import CpuPlan, FeaturesPlan
from vmtune.xmlmap import tree
from vmtune.xmlmap.order import rank

__all__ = ["apply_clock", "apply_cpu", "apply_features"]

Element = etree._Element


def apply_features(root: Element, plan: FeaturesPlan) -> None:
    features = tree.child(root, "features")
    if features is None:
        if _features_noop(plan):
            return
        features = tree.add(root, "features")
    if plan.apic is not None:
        tree.toggle(features, "apic", plan.apic)
    if plan.hyperv is not None:
        _hyperv(features, plan.hyperv)
    if plan.kvm_hidden is not None or plan.kvm_hint_dedicated is not None:
        kvm = tree.ensure(features, "kvm")
        for tag, want in (("hidden", plan.kvm_hidden), ("hint-dedicated", plan.kvm_hint_dedicated)):
            if want is not None:
                tree.set_attr(tree.ensure(kvm, tag), "state", "on" if want else "off")
    if plan.pmu is not None:
        tree.set_attr(tree.ensure(features, "pmu"), "state", "on" if plan.pmu else "off")


def _features_noop(plan: FeaturesPlan) -> bool:
    return (
        not plan.apic
        and not plan.hyperv
        and plan.pmu is None
        and plan.kvm_hidden is None
        and plan.kvm_hint_dedicated is None
    )


def _hyperv(features: Element, want: tuple[HypervFeature, ...]) -> None:
    hyperv = tree.toggle(features, "hyperv", bool(want), {"mode": "custom"})
    if hyperv is None:
        return
    if hyperv.get("mode") not in (None, "custom"):
        # mode='passthrough' enables everything and forbids listing children; the plan lists them
        tree.set_attr(hyperv, "mode", "custom")
    names = {f.name for f in want}
    for old in [c for c in hyperv if tree.is_element(c) and c.tag not in names]:
        tree.remove(old)
    ordered = sorted(want, key=lambda f: (rank("hyperv", f.name) is None, rank("hyperv", f.name) or 0))
    for feat in ordered:
        elem = tree.ensure(hyperv, feat.name)
        tree.set_attr(elem, "state", "on" if feat.state else "off")
        wanted_attrs = dict(feat.attrs)
        for key in [k for k in elem.attrib if k != "state" and k not in wanted_attrs]:
            del elem.attrib[str(key)]
        for key, value in feat.attrs:
            tree.set_attr(elem, key, value)
        subs = set(feat.children)
        for sub in [c for c in elem if tree.is_element(c) and c.tag not in subs]:
            tree.remove(sub)
        for name in feat.children:
            tree.set_attr(tree.ensure(elem, name), "state", "on")


def apply_cpu(root: Element, plan: CpuPlan) -> None:
    cpu = tree.child(root, "cpu")
    if cpu is None:
        cpu = tree.add(root, "cpu")
    if plan.mode is not None:
        _cpu_mode(cpu, plan.mode)
    if plan.check is not None:
        tree.set_attr(cpu, "check", plan.check)
    if plan.topology is not None:
        _topology(cpu, plan.topology)
    for policy, name in plan.features:
        found = next((f for f in tree.children(cpu, "feature") if f.get("name") == name), None)
        if found is None:
            tree.add(cpu, "feature", {"policy": policy, "name": name})
        else:
            tree.set_attr(found, "policy", policy)
    if plan.numa_cells is not None:
        _numa(cpu, plan.numa_cells)


def _cpu_mode(cpu: Element, mode: str) -> None:
    tree.set_attr(cpu, "mode", mode)
    if mode in ("host-passthrough", "maximum"):
        # libvirt rejects a named <model>/<vendor> (and ignores @match) outside custom/host-model mode
        for tag in ("model", "vendor"):
            for elem in tree.children(cpu, tag):
                if (elem.text or "").strip() or tag == "vendor":
                    tree.remove(elem)
        tree.set_attr(cpu, "match", None)
    elif mode == "host-model":
        for elem in tree.children(cpu, "vendor"):
            tree.remove(elem)
        tree.set_attr(cpu, "match", None)


def _topology(cpu: Element, topo: GuestTopology) -> None:
    elem = tree.ensure(cpu, "topology")
    values = {"sockets": topo.sockets, "dies": topo.dies, "clusters": topo.clusters}
    values |= {"cores": topo.cores, "threads": topo.threads}
    for key, value in values.items():
        # dies/clusters default to 1 and older schemas (libvirt < 10.1) reject clusters: write them only
        # when they matter or the file already has them
        if key in ("dies", "clusters") and value == 1 and elem.get(key) is None:
            continue
        tree.set_attr(elem, key, str(value))


def _numa(cpu: Element, cells: tuple[NumaCell, ...]) -> None:
    numa = tree.toggle(cpu, "numa", bool(cells))
    if numa is None:
        return
    ordered = sorted(cells, key=lambda c: c.id)
    for elem, cell in zip(tree.replace_children(numa, "cell", len(ordered)), ordered, strict=True):
        tree.set_attr(elem, "id", str(cell.id))
        tree.set_attr(elem, "cpus", str(cell.cpus))
        tree.set_attr(elem, "memory", str(cell.memory_kib))
        tree.set_attr(elem, "unit", "KiB")


def apply_clock(root: Element, timers: tuple[Timer, ...]) -> None:
    if not timers:
        return
    clock = tree.child(root, "clock")
    if clock is None:
        clock = tree.add(root, "clock", {"offset": "utc"})
    for timer in timers:
        found = next((t for t in tree.children(clock, "timer") if t.get("name") == timer.name), None)
        if found is None:
            found = tree.add(clock, "timer", {"name": timer.name})
        # libvirt prints name, present, tickpolicy in that order
        if timer.present is not None:
            tree.set_attr(found, "present", "yes" if timer.present else "no")
        if timer.tickpolicy is not None:
            tree.set_attr(found, "tickpolicy", timer.tickpolicy)
            if timer.tickpolicy != "catchup":
                # <catchup threshold slew limit/> is only valid under tickpolicy='catchup' (schema)
                for sub in tree.children(found, "catchup"):
                    tree.remove(sub)
