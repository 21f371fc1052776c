"""``<devices><disk>`` and ``<devices><controller>``: only the ``<driver iothread=>`` of virtio disks and
virtio-scsi controllers, the IOThread whose event loop runs the device's I/O (libvirt formatdomain,
"IOThreads Allocation" and the disk ``driver`` element). Nothing else of a device is read or written.
"""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import IOThreadDevice, IOThreadDeviceKind
from vmtune.core.plan import Plan
from vmtune.xmlmap import tree
from vmtune.xmlmap.elements.view import INT, Attr, Fields, Reader

__all__ = ["read", "write"]

DEVICES = "devices"
DRIVER = "driver"
IOTHREAD = Attr(name="iothread", codec=INT)
"""The one attribute this module owns: ``<driver iothread=>`` inside a disk or a controller."""


def _serves(kind: IOThreadDeviceKind, elem: etree._Element) -> str | None:
    """The device's label when an IOThread can serve it (a virtio disk, a virtio-scsi controller)."""
    if kind is IOThreadDeviceKind.DISK:
        target = tree.child(elem, "target")
        # libvirt refuses an IOThread for a vhost-user disk: its I/O runs in the vhost-user backend
        if target is None or target.get("bus") != "virtio" or elem.get("type") == "vhostuser":
            return None
        return tree.attr(target, "dev") or "virtio disk"
    if elem.get("type") != "scsi" or elem.get("model") != "virtio-scsi":
        return None
    return f"SCSI controller {tree.attr(elem, 'index') or 0}"


def read(domain: etree._Element, r: Reader) -> Fields:
    devices = tree.child(domain, DEVICES)
    if devices is None:
        return {}
    found: list[IOThreadDevice] = []
    for kind in IOThreadDeviceKind:
        for ordinal, elem in enumerate(tree.children(devices, kind.value)):
            label = _serves(kind, elem)
            if label is None:
                continue
            driver = tree.child(elem, DRIVER)
            iothread = None if driver is None else IOTHREAD.read(r, driver)
            found.append(IOThreadDevice(kind=kind, ordinal=ordinal, label=label, iothread=iothread))
    return {"iothread_devices": tuple(found)} if found else {}


def write(domain: etree._Element, plan: Plan) -> None:
    if not plan.device_iothreads:
        return
    devices = tree.child(domain, DEVICES)
    if devices is None:
        return
    elements = {kind: tree.children(devices, kind.value) for kind in IOThreadDeviceKind}
    for device in plan.device_iothreads:
        elem = elements[device.kind][device.ordinal]
        driver = tree.child(elem, DRIVER)
        if driver is None:
            if device.iothread is None:
                continue
            driver = tree.add(elem, DRIVER)
        IOTHREAD.write(driver, device.iothread)
        if device.iothread is None:
            tree.drop_if_empty(driver)
