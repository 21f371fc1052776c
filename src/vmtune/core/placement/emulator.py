"""Where the emulator thread and iothreads run.

QEMU's emulator thread (device emulation, the main loop) and iothreads (virtio-blk/scsi dataplane) wake up
at unpredictable times; on a dedicated vCPU core they steal the vCPU's time slices, which a realtime guest
sees as latency spikes. So:

* ``--emulator share``: they float over the host's housekeeping CPUs (the reserved ones, or everything
  outside ``isolcpus=``) on the guest's own node(s), never over the guest's dedicated cores;
* ``--emulator isolate``: each gets its own CPU on the guest's node - with ``isolcpus=`` a housekeeping
  CPU outside it (the scheduler does not balance onto isolated CPUs); otherwise, for a non-realtime guest,
  first a free SMT sibling of the guest's own cores (cheap and cache-local), then a free core - in the
  guest's own cache groups first, then in idle ones, and in a group another guest uses last (an emulator
  there would be a needless share of that group, ``sharing``); a realtime guest never gets them on a
  sibling of its cores (the sibling's activity jitters the RT vCPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vmtune.core.guest import IOThreadPin
from vmtune.core.intent.model import EmulatorPolicy
from vmtune.core.ledger.pool import Ledger
from vmtune.core.placement.numa import distance
from vmtune.core.placement.sharing import sharing_groups
from vmtune.core.plan import Level, Note
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

__all__ = ["EmulatorPlacement", "place_emulator"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorPlacement:
    emulatorpin: CpuSet | None
    iothreadpins: tuple[IOThreadPin, ...]
    used: CpuSet
    """CPUs taken exclusively by isolate (so the caller does not hand them out twice)."""
    notes: tuple[Note, ...]


def _near(host: Host, cpus: CpuSet, nodes: Sequence[int], sockets: CpuSet | None = None) -> CpuSet:
    """``cpus`` on the guest's nodes, those on the guest's own sockets (``sockets``: their CPUs) first: a
    node that holds CPUs of two sockets (CPUs the firmware put in no node) must not send the emulator to
    the other socket; else on the nearest node that has some."""
    local = CpuSet().union(*(n.cpus for n in host.nodes if n.id in nodes)) & cpus
    if sockets is not None and local & sockets:
        return local & sockets
    if local or not cpus:
        return local
    others = sorted(
        (n for n in host.nodes if n.id not in nodes and not n.cpus.isdisjoint(cpus)),
        key=lambda n: (min(distance(host, n.id, g) for g in nodes) if nodes else 0, n.id),
    )
    return others[0].cpus & cpus if others else cpus


def place_emulator(
    *,
    host: Host,
    ledger: Ledger,
    policy: EmulatorPolicy,
    iothreads: Sequence[int],
    guest_cpus: CpuSet,
    nodes: Sequence[int],
    realtime: bool,
    current: CpuSet | None = None,
) -> EmulatorPlacement:
    guest_cores = CpuSet().union(*(host.siblings(c) for c in guest_cpus))
    sockets = CpuSet().union(*(s.cpus for s in host.sockets if not s.cpus.isdisjoint(guest_cpus)))
    if policy is EmulatorPolicy.SHARE:
        return _share(host, ledger, iothreads, nodes, guest_cores, sockets=sockets)
    candidates, why = _isolate_candidates(host, ledger, guest_cpus, guest_cores, nodes, sockets=sockets,
                                          realtime=realtime)  # fmt: skip
    if not candidates:
        return _isolate_fallback(host, ledger, iothreads, nodes, sockets)
    if current is not None and len(current) == 1 and current.first() in candidates:
        # stability: an isolated emulator CPU that is still a valid choice stays where it is
        candidates.remove(current.first())
        candidates.insert(0, current.first())
    return _isolate(ledger, candidates, iothreads, why)


def _share(
    host: Host,
    ledger: Ledger,
    iothreads: Sequence[int],
    nodes: Sequence[int],
    guest_cores: CpuSet,
    *,
    sockets: CpuSet,
) -> EmulatorPlacement:
    """``--emulator share``: the housekeeping CPUs near the guest, else its free non-dedicated CPUs."""
    pool = _near(host, ledger.housekeeping, nodes, sockets)
    where = "housekeeping CPUs"
    if not pool:
        # no housekeeping CPU at all (--reserve ''): the free, non-dedicated CPUs of the node
        pool = _near(host, ledger.free - guest_cores, nodes, sockets)
        where = "free CPUs (no housekeeping CPUs reserved)"
    if not pool:
        note = Note(
            topic="emulator",
            level=Level.WARNING,
            message="no housekeeping or free CPU left for the emulator thread: left unpinned",
        )
        return EmulatorPlacement(emulatorpin=None, iothreadpins=(), used=CpuSet(), notes=(note,))
    local = not nodes or not pool.isdisjoint(CpuSet().union(*(n.cpus for n in host.nodes if n.id in nodes)))
    note = Note(
        topic="emulator",
        message=f"{'emulator thread and iothreads share' if iothreads else 'emulator thread shares'}"
        + f" {where} {pool}"
        + ("" if local else " (none on the guest's node, so the nearest node's)")
        + ", never the guest's dedicated cores (--emulator share)",
        xpath="/domain/cputune/emulatorpin",
    )
    return EmulatorPlacement(
        emulatorpin=pool,
        iothreadpins=tuple(IOThreadPin(iothread=i, cpus=pool) for i in iothreads),
        used=CpuSet(),
        notes=(note,),
    )


def _isolate_candidates(
    host: Host,
    ledger: Ledger,
    guest_cpus: CpuSet,
    guest_cores: CpuSet,
    nodes: Sequence[int],
    *,
    sockets: CpuSet,
    realtime: bool,
) -> tuple[list[int], str]:
    """(CPUs ``--emulator isolate`` may take, best first; why they were chosen)."""
    if ledger.isolcpus:
        hk = _near(host, ledger.housekeeping, nodes, sockets)
        other_pins = CpuSet().union(*(t.cpus for t in ledger.tenants))
        return list(hk - other_pins) + list(hk & other_pins), "housekeeping CPU outside isolcpus"
    node_cpus = _near(host, ledger.online, nodes, sockets)
    free = (ledger.free & node_cpus) - guest_cpus
    siblings = free & guest_cores
    whole = [c for core in host.cores if core.cpus and core.cpus.issubset(free) for c in core.cpus]
    partial = [c for c in free if c not in siblings and c not in whole]
    candidates = _by_cache(host, ledger, guest_cpus, ([] if realtime else list(siblings)) + whole + partial)
    return candidates, "free CPU on the guest's node" + (
        "" if realtime else " (a sibling of its own cores first)"
    )


def _isolate_fallback(
    host: Host, ledger: Ledger, iothreads: Sequence[int], nodes: Sequence[int], sockets: CpuSet
) -> EmulatorPlacement:
    """``--emulator isolate`` with no CPU to spare: share the housekeeping CPUs, with a warning."""
    pool = _near(host, ledger.housekeeping, nodes, sockets)
    note = Note(
        topic="emulator",
        level=Level.WARNING,
        message=f"--emulator isolate: no free CPU on the guest's node; emulator thread shares "
        f"housekeeping CPUs {pool or 'none'} instead",
    )
    return EmulatorPlacement(
        emulatorpin=pool or None,
        iothreadpins=tuple(IOThreadPin(iothread=i, cpus=pool) for i in iothreads) if pool else (),
        used=CpuSet(),
        notes=(note,),
    )


def _isolate(
    ledger: Ledger, candidates: Sequence[int], iothreads: Sequence[int], why: str
) -> EmulatorPlacement:
    """The emulator on the first candidate, each iothread on the next (else on the emulator's CPU)."""
    need = 1 + len(iothreads)
    chosen = candidates[:need]
    emu = CpuSet(chosen[:1])
    pins = tuple(
        IOThreadPin(iothread=io, cpus=CpuSet([chosen[k]]) if k < len(chosen) else emu)
        for k, io in enumerate(iothreads, start=1)
    )
    notes = [
        Note(
            topic="emulator",
            message=f"emulator thread isolated on CPU {emu} ({why}; --emulator isolate)",
            xpath="/domain/cputune/emulatorpin",
        )
    ]
    if iothreads:
        shared = " (sharing the emulator's CPU: no more free CPUs)" if len(chosen) < need else ""
        notes.append(
            Note(
                topic="emulator",
                message=f"{len(iothreads)} iothread(s) on CPU(s) {CpuSet(chosen[1:]) or emu}{shared}",
                xpath="/domain/cputune/iothreadpin",
            )
        )
    used = CpuSet() if ledger.isolcpus else CpuSet(chosen)
    return EmulatorPlacement(emulatorpin=emu, iothreadpins=pins, used=used, notes=tuple(notes))


def _by_cache(host: Host, ledger: Ledger, guest_cpus: CpuSet, candidates: list[int]) -> list[int]:
    """``candidates`` in the guest's own cache groups first, then in idle ones, then in groups other guests
    use (each kept in order)."""
    groups = sharing_groups(host)
    if not groups:
        return candidates
    used = CpuSet().union(*(t.cache for t in ledger.tenants))
    own = CpuSet().union(*(grp for _, grp in groups if not grp.isdisjoint(guest_cpus)))
    busy = CpuSet().union(*(grp for _, grp in groups if not grp.isdisjoint(used))) - own
    return sorted(candidates, key=lambda cpu: 0 if cpu in own else 2 if cpu in busy else 1)
