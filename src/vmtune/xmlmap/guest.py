"""Read the GuestSpec a plan needs from a domain XML tree: each element module contributes its fields."""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import GuestSpec
from vmtune.errors import InputError, VmtuneError
from vmtune.xmlmap.elements import READ
from vmtune.xmlmap.elements.view import Fields, Reader
from vmtune.xmlmap.safe import parse_xml

__all__ = ["read_guest"]


def read_guest(tree_or_bytes: etree._ElementTree | bytes | str, *, source: str) -> GuestSpec:
    """Everything vmtune needs to know about the guest; InputError names the XPath of bad values."""
    doc = (
        tree_or_bytes
        if isinstance(tree_or_bytes, etree._ElementTree)
        else parse_xml(tree_or_bytes, source=source, root="domain")
    )
    root = doc.getroot()
    if root.tag != "domain":
        raise InputError(f"{source}: root element is <{root.tag}>, expected <domain>")
    reader = Reader(source=source)
    fields: Fields = {}
    try:
        for element in READ:
            fields |= element.read(root, reader)
    except VmtuneError:
        raise
    except ValueError as err:  # CpuSet range errors surface as InputError already; this is a backstop
        raise InputError(f"{source}: {err}") from None
    if fields.get("numa_cells"):
        # libvirt sizes a domain with cells by them, whatever <memory> says (or without one): the cells'
        # sum, plus the memory devices (virDomainDefPostParseMemory)
        cells = sum(c.memory_kib for c in fields["numa_cells"])
        fields["memory_kib"] = cells + sum(d.size_kib for d in fields.get("memory_devices", ()))
    return GuestSpec(source=source, **fields)
