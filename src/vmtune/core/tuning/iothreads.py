"""IOThreads get work: a virtio disk or virtio-scsi controller without ``<driver iothread=>`` runs its I/O
in QEMU's main loop, so IOThreads that no device names only cost a host thread.

When the plan has IOThreads (``Plan.iothreads`` = N, with the ids libvirt gives them: those
``<iothreadids>`` lists, then the lowest unused), every such device without one is given the IOThread
serving the fewest devices so far, lowest id first: round-robin over the N when none had one. A device
that already names an IOThread of the plan keeps it; one naming an IOThread the plan no longer has
(libvirt would refuse the definition) is moved, with a warning, and with no IOThreads left
(``--iothreads 0``) the attribute is removed.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from vmtune.core.guest import GuestSpec, IOThreadDevice, iothread_ids
from vmtune.core.plan import Level, Note, Plan
from vmtune.cpuset import CpuSet

__all__ = ["keep_iothreadsched", "spread_iothreads"]

_LISTED = 8
"""Devices a note names one by one before it only counts the rest."""


def spread_iothreads(plan: Plan, guest: GuestSpec) -> Plan:
    """``plan`` with ``device_iothreads`` set for the devices whose IOThread changes, and a note."""
    count, devices = plan.iothreads, guest.iothread_devices
    if count is None or not devices:
        return plan
    if count == 0:
        dropped = tuple(replace(d, iothread=None) for d in devices if d.iothread is not None)
        if not dropped:
            return plan
        note = Note(
            topic="iothreads",
            message=f"no IOThreads left: {_names(dropped)} back in QEMU's main loop",
            xpath="/domain/devices",
        )
        return replace(plan, device_iothreads=dropped, notes=(*plan.notes, note))
    ids = iothread_ids(guest.iothread_given_ids, count)
    kept = Counter(d.iothread for d in devices if d.iothread in ids)
    load = [(kept[i], i) for i in ids]
    heapq.heapify(load)
    moved: list[IOThreadDevice] = []
    for device in devices:
        if device.iothread in ids:
            continue
        users, iothread = heapq.heappop(load)
        heapq.heappush(load, (users + 1, iothread))
        moved.append(replace(device, iothread=iothread))
    if not moved:
        return plan
    return replace(plan, device_iothreads=tuple(moved), notes=(*plan.notes, *_notes(moved, devices, count)))


def _notes(moved: Sequence[IOThreadDevice], before: Sequence[IOThreadDevice], count: int) -> list[Note]:
    moved_keys = {(d.kind, d.ordinal) for d in moved}
    stale = [d for d in before if d.iothread is not None and (d.kind, d.ordinal) in moved_keys]
    listed = ", ".join(f"{d.label} -> {d.iothread}" for d in moved[:_LISTED])
    more = f" and {len(moved) - _LISTED} more" if len(moved) > _LISTED else ""
    notes = [
        Note(
            topic="iothreads",
            message=f"I/O moves off QEMU's main loop: {listed}{more} (<driver iothread>, spread over the "
            f"{count} IOThread(s) with the fewest devices; devices that had one keep it)",
            xpath="/domain/devices",
        )
    ]
    if stale:
        notes.append(
            Note(
                topic="iothreads",
                level=Level.WARNING,
                message=f"{_names(stale)} named an IOThread beyond the {count} planned: moved",
                xpath="/domain/devices",
            )
        )
    return notes


def _names(devices: Sequence[IOThreadDevice]) -> str:
    names = ", ".join(d.label for d in devices[:_LISTED])
    return names + (f" and {len(devices) - _LISTED} more" if len(devices) > _LISTED else "")


def keep_iothreadsched(plan: Plan, guest: GuestSpec) -> Plan:
    """The guest's ``<iothreadsched>`` trimmed to the IOThreads the plan keeps: libvirt refuses one that
    names an IOThread the domain does not have (``--iothreads`` lowered below it)."""
    if plan.iothreads is None or plan.iothreadsched is not None or not guest.iothreadsched:
        return plan
    ids = CpuSet(iothread_ids(guest.iothread_given_ids, plan.iothreads))
    kept = tuple(replace(s, iothreads=s.iothreads & ids) for s in guest.iothreadsched if s.iothreads & ids)
    if kept == guest.iothreadsched:
        return plan
    gone = CpuSet().union(*(s.iothreads for s in guest.iothreadsched)) - ids
    note = Note(
        topic="iothreads",
        message=f"<iothreadsched> no longer names IOThread(s) {gone}: the guest has {plan.iothreads} now",
        xpath="/domain/cputune/iothreadsched",
    )
    return replace(plan, iothreadsched=kept, notes=(*plan.notes, note))
