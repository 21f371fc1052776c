"""Facts about the domain that vmtune reads and never writes: identity, OS, memory size and memory
devices, PCI hostdevs."""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import MemoryDevice
from vmtune.core.intent.model import OsFamily
from vmtune.errors import InputError
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import Fields, Reader, memory_kib
from vmtune.xmlmap.metadata import LIBOSINFO_NS, os_family_of

__all__ = ["read"]

Element = etree._Element

LIBOSINFO_OS = f"metadata/{{{LIBOSINFO_NS}}}libosinfo/{{{LIBOSINFO_NS}}}os"
PCI_ADDRESS = ("domain", "bus", "slot", "function")


def read(domain: Element, r: Reader) -> Fields:
    name = tree.child(domain, "name")
    uuid = tree.child(domain, "uuid")
    os_el = tree.child(domain, "os")
    os_type = None if os_el is None else tree.child(os_el, "type")
    memory = tree.child(domain, "memory")
    max_memory = tree.child(domain, "maxMemory")
    os_node = domain.find(LIBOSINFO_OS)
    os_id = None if os_node is None else tree.attr(os_node, "id")
    return {
        "name": "" if name is None else (name.text or "").strip(),
        "uuid": None if uuid is None else (uuid.text or "").strip(),
        "domain_type": str(domain.get("type") or "kvm"),
        "arch": None if os_type is None else tree.attr(os_type, "arch"),
        "machine": None if os_type is None else tree.attr(os_type, "machine"),
        "memory_kib": 0
        if memory is None
        else memory_kib(memory.text or "", memory.get("unit"), r.where(memory)),
        "max_memory_kib": None
        if max_memory is None
        else memory_kib(max_memory.text or "", max_memory.get("unit"), r.where(max_memory)),
        "memory_devices": _memory_devices(domain, r),
        "controller_cells": _controller_cells(domain, r),
        "os_family": OsFamily.UNKNOWN if os_id is None else os_family_of(os_id),
        "os_id": os_id,
        "hostdev_pci": _hostdev_pci(domain, r),
    }


def _memory_devices(domain: Element, r: Reader) -> tuple[MemoryDevice, ...]:
    """``<devices><memory>``: their size is part of ``<memory>`` but not of any NUMA cell."""
    devices = tree.child(domain, "devices")
    out = []
    for dev in () if devices is None else tree.children(devices, "memory"):
        target = tree.child(dev, "target")
        size = None if target is None else tree.child(target, "size")
        node = None if target is None else tree.child(target, "node")
        out.append(
            MemoryDevice(
                model=str(dev.get("model") or ""),
                size_kib=0 if size is None else memory_kib(size.text or "", size.get("unit"), r.where(size)),
                node=None if node is None else r.text_int(node),
            )
        )
    return tuple(out)


def _controller_cells(domain: Element, r: Reader) -> tuple[tuple[str, int], ...]:
    """Controllers bound to a guest cell (``pci-expander-bus``/``pcie-expander-bus`` ``<target><node>``)."""
    devices = tree.child(domain, "devices")
    out = []
    for ctl in () if devices is None else tree.children(devices, "controller"):
        target = tree.child(ctl, "target")
        node = None if target is None else tree.child(target, "node")
        if node is not None:
            where = f"/domain/devices/controller[@type='{ctl.get('type')}'][@index='{ctl.get('index')}']"
            out.append((where, r.text_int(node)))
    return tuple(out)


def _hostdev_pci(domain: Element, r: Reader) -> tuple[str, ...]:
    """PCI addresses of passed-through devices, ``dddd:bb:ss.f`` as sysfs names them."""
    devices = tree.child(domain, "devices")
    out = []
    for hd in () if devices is None else tree.children(devices, "hostdev"):
        addr = hd.find("source/address")
        if hd.get("type") != "pci" or addr is None:
            continue
        try:
            dom, bus, slot, fn = (int(str(addr.get(k, "0")), 0) for k in PCI_ADDRESS)
        except ValueError:
            raise InputError(f"{r.where(addr)}: malformed PCI address") from None
        out.append(f"{dom:04x}:{bus:02x}:{slot:02x}.{fn:x}")
    return tuple(out)
