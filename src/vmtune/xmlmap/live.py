"""libvirt's status files, read for the hook.

``/run/libvirt/qemu/<name>.xml`` is not a domain but libvirt's private ``<domstatus>`` wrapper
(``qemuDomainObjPrivateXMLFormat``): ``<domstatus state= pid=>`` with ``<vcpus><vcpu id= pid=/>``,
QEMU capability flags and the live ``<domain>`` inside. The hook reads the tenants from these files
because it must never call back into libvirtd (the daemon holds the domain lock while the hook runs).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from vmtune.core.guest import GuestSpec
from vmtune.errors import InputError
from vmtune.xmlmap.guest import read_guest
from vmtune.xmlmap.safe import parse_xml

__all__ = ["DomainStatus", "read_status"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainStatus:
    guest: GuestSpec
    pid: int | None
    state: str | None
    vcpu_tids: tuple[tuple[int, int], ...] = ()
    """(vCPU id, thread id) as libvirt recorded them."""


def read_status(data: bytes | str, *, source: str) -> DomainStatus:
    """A ``<domstatus>`` file (or a bare ``<domain>``, as tests and older libvirt write) -> its guest."""
    doc = parse_xml(data, source=source)
    root = doc.getroot()
    if root.tag == "domain":
        return DomainStatus(guest=read_guest(doc, source=source), pid=None, state=None)
    if root.tag != "domstatus":
        raise InputError(f"{source}: root element is <{root.tag}>, expected <domstatus> or <domain>")
    domain = root.find("domain")
    if domain is None:
        raise InputError(f"{source}: /domstatus has no <domain>")
    guest = read_guest(etree.ElementTree(domain), source=source)
    pid_text = root.get("pid")
    tids: list[tuple[int, int]] = []
    for vcpu in root.iterfind("vcpus/vcpu"):
        vid, tid = vcpu.get("id"), vcpu.get("pid")
        if vid is not None and tid is not None and vid.isdigit() and tid.isdigit():
            tids.append((int(vid), int(tid)))
    return DomainStatus(
        guest=guest,
        pid=int(pid_text) if pid_text and pid_text.isdigit() else None,
        state=root.get("state"),
        vcpu_tids=tuple(tids),
    )
