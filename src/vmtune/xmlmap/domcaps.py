"""Read ``virsh domcapabilities`` XML into HostCaps: what this host's QEMU/KVM can give a guest.

Only what vmtune gates on is read: the Hyper-V enlightenments listed under
``<features><hyperv><enum name='features'>`` (libvirt >= 8.0 fills them from QEMU's query of KVM's
Hyper-V CPUID; nested KVM lists only spinlocks and vendor_id), the supported ``<cpu><mode>`` names, the
vendor of the host-model CPU, the domain type (kvm / qemu = TCG), iothreads support, the QEMU binary
(``<path>``, which the nested CPU probe runs) and whether the host-model CPU carries ``arch-capabilities``
(without it a refused MSR 0x10a is unlikely, so the nested CPU gate does not warn when it has no probe).
Nesting is *not* read from here: the host-model CPU is the CPU a guest would get, and KVM sets the
``hypervisor`` bit for every guest, so bare-metal hosts list ``<feature name='hypervisor'/>`` too (8 of the
19 corpus files, among them AMD SEV and Intel TDX servers). ``virsh capabilities`` (the host's own CPUID)
and ``/proc/cpuinfo`` tell nesting apart.
An element libvirt did not print means "unknown" (None), not "unsupported": older libvirt has no
``<hyperv>`` in domcapabilities at all.
"""

from __future__ import annotations

from lxml import etree

from vmtune.core.topology.caps import HostCaps
from vmtune.xmlmap.safe import parse_xml

__all__ = ["parse_domcapabilities"]


def _supported(elem: etree._Element | None) -> bool | None:
    if elem is None:
        return None
    value = elem.get("supported")
    return None if value is None else value == "yes"


def _text(root: etree._Element, path: str) -> str | None:
    found = root.findtext(path)
    return found.strip() or None if found is not None else None


def _offers(mode: etree._Element, feature: str) -> bool | None:
    """Whether the host-model CPU turns ``feature`` on; None when libvirt printed no model at all."""
    if mode.find("model") is None:
        return None
    policies = [f.get("policy") for f in mode.iterfind("feature") if f.get("name") == feature]
    return bool(policies) and policies[-1] in ("require", "force")


def parse_domcapabilities(text: str | bytes, source: str) -> HostCaps:
    """Parse domcapabilities XML; InputError names ``source`` (file:line:col) on malformed input."""
    root = parse_xml(text, source=source, root="domainCapabilities").getroot()

    hyperv: frozenset[str] | None = None
    hv = root.find("features/hyperv")
    hv_supported = _supported(hv)
    if hv is not None and hv_supported is False:
        hyperv = frozenset()
    elif hv is not None:
        values = hv.xpath("enum[@name='features']/value/text()")
        if hv.find("enum[@name='features']") is not None and isinstance(values, list):
            hyperv = frozenset(str(v).strip() for v in values)

    cpu_modes: frozenset[str] | None = None
    modes = root.findall("cpu/mode")
    if modes:
        cpu_modes = frozenset(m.get("name", "") for m in modes if m.get("supported") == "yes") - {""}

    vendor = None
    arch_capabilities: bool | None = None
    for mode in modes:
        if mode.get("name") == "host-model" and mode.get("supported") == "yes":
            vendor = _text(mode, "vendor")
            arch_capabilities = _offers(mode, "arch-capabilities")

    return HostCaps(
        source=source,
        hyperv=hyperv,
        cpu_modes=cpu_modes,
        cpu_vendor=vendor,
        domain_type=_text(root, "domain"),
        iothreads=_supported(root.find("iothreads")),
        max_vcpus=int(m) if (m := str(root.xpath("string(vcpu/@max)"))).isdigit() else None,
        emulator=_text(root, "path"),
        arch_capabilities=arch_capabilities,
    )
