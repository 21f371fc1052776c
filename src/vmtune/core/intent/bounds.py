"""Sizes libvirt/QEMU or the host cannot take, refused before any planning (exit 2, naming the value).

* vCPUs: the most the guest's machine type accepts. domcapabilities' ``<vcpu max=>`` when known (QEMU's
  answer for the host's default machine), never above what a versioned machine type takes:
  ``pc``/``pc-i440fx-*`` 255; ``pc-q35-X.Y`` 255 before 2.8, 288 before 8.0, 1024 before 9.0, then 4096
  (QEMU raised ``max_cpus`` per machine version, and older versions keep their limit); with neither,
  4096: libvirt's ``QEMU_GUEST_VCPU_MAX_ID`` and the most any QEMU machine or x86 KVM accepts today. A bound
  here also bounds planning time: a hook holding its lock never plans more than this many vCPUs.
* ``--iothreads``: bounded by its parser (``values.MAX_IOTHREADS``).
* ``--numa N``: at most the host's node count.
"""

from __future__ import annotations

import re

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Numa
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.errors import InputError

__all__ = ["MAX_VCPUS", "check_bounds", "vcpu_limit"]

MAX_VCPUS = 4096
"""The ceiling when neither domcapabilities nor the machine type says less."""
_I440FX = re.compile(r"pc(-i440fx-.*|-\d.*)?")
_Q35 = re.compile(r"pc-q35-(\d+)\.(\d+)(\..*)?")
_Q35_STEPS = (((2, 8), 255), ((8, 0), 288), ((9, 0), 1024))
"""(first q35 version with a higher limit, the limit before it)."""


def _machine_limit(machine: str | None) -> int | None:
    """The vCPU limit of a versioned machine type name; None for names the table does not know."""
    name = (machine or "").strip()
    if _I440FX.fullmatch(name):
        return 255
    found = _Q35.fullmatch(name)
    if found is None:
        return None
    version = (int(found[1]), int(found[2]))
    return next((lim for since, lim in _Q35_STEPS if version < since), MAX_VCPUS)


def vcpu_limit(machine: str | None, caps: HostCaps | None) -> tuple[int, str]:
    """(the most vCPUs a guest of ``machine`` may have, what says so): the machine type's own limit and
    domcapabilities' ``<vcpu max>``, the lower when both are known, else ``MAX_VCPUS``."""
    table = _machine_limit(machine)
    known = None if caps is None else caps.max_vcpus
    if known is not None and (table is None or known < table):
        return known, f"this host's QEMU (domcapabilities <vcpu max='{known}'/>)"
    if table is not None:
        return table, f"QEMU machine type {(machine or '').strip()}"
    return MAX_VCPUS, "libvirt's QEMU driver"


def check_bounds(*, host: Host, guest: GuestSpec, numa: Numa, caps: HostCaps | None) -> None:
    """InputError (one line, naming the file and XPath or the flag) for a size nothing could run."""
    limit, why = vcpu_limit(guest.machine, caps)
    if guest.vcpus > limit:
        raise InputError(
            f"{guest.source}: /domain/vcpu: {guest.vcpus} vCPUs, more than the {limit} {why} accepts"
        )
    nodes = max(1, len(host.nodes))
    if numa.nodes is not None and numa.nodes > nodes:
        raise InputError(
            f"--numa {numa.nodes}: this host has {nodes} NUMA node{'s' if nodes > 1 else ''}"
            f" (--numa auto lets vmtune choose)"
        )
