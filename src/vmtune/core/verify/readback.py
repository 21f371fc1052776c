"""Did the owned sections survive? Compare a Plan with the GuestSpec read back from libvirt (pure).

libvirt parses, normalizes and re-formats every definition: an element it does not understand on this
version is dropped without an error (``defineXML`` succeeds), a cpuset is re-printed canonically, a
``<vcpusched>`` group may come back split. So the comparison is semantic, field by field, over the
fields the plan sets (``None`` = vmtune left it alone, nothing to check). The same comparison against
the *live* XML of a running guest tells which changes still need a restart.
"""

from __future__ import annotations

from vmtune.core.guest import CacheTune, GuestSpec, IOThreadSched, VcpuSched
from vmtune.core.plan import Plan

__all__ = ["owned_mismatches"]


def _sched_map(entries: tuple[VcpuSched, ...]) -> dict[int, tuple[str, int | None]]:
    return {vcpu: (s.scheduler, s.priority) for s in entries for vcpu in s.vcpus}


def _iothread_sched_map(entries: tuple[IOThreadSched, ...]) -> dict[int, tuple[str, int | None]]:
    return {t: (s.scheduler, s.priority) for s in entries for t in s.iothreads}


def _cache_map(tunes: tuple[CacheTune, ...]) -> dict[str, set[tuple[int, int, str, int]]]:
    """vCPUs -> (level, id, type, bytes): libvirt may re-print sizes in another unit."""
    return {str(t.vcpus): {(c.level, c.id, c.type, c.size_bytes) for c in t.caches} for t in tunes}


def _pins(pins: tuple[object, ...]) -> str:
    return " ".join(str(p) for p in pins) or "none"


def owned_mismatches(plan: Plan, guest: GuestSpec) -> tuple[str, ...]:
    """One short text per owned section where ``guest`` does not say what ``plan`` asked."""
    pairs = [*_cputune_pairs(plan, guest), *_numa_pairs(plan, guest), *_cpu_pairs(plan, guest),
             *_device_pairs(plan, guest)]  # fmt: skip
    return tuple(f"{section} (wanted {want}, got {got})" for section, want, got in pairs if want != got)


_Pair = tuple[str, object, object]


def _cputune_pairs(plan: Plan, guest: GuestSpec) -> list[_Pair]:
    out: list[_Pair] = []
    if plan.vcpupins is not None:
        want = {p.vcpu: str(p.cpus) for p in plan.vcpupins}
        out.append(("cputune/vcpupin", want, {p.vcpu: str(p.cpus) for p in guest.vcpupins}))
    if plan.vcpu_cpuset is not None:
        out.append(("vcpu/@cpuset", str(plan.vcpu_cpuset), str(guest.vcpu_cpuset or "")))
    if plan.emulatorpin is not None:
        out.append(("cputune/emulatorpin", str(plan.emulatorpin), str(guest.emulatorpin or "")))
    if plan.iothreads is not None:
        out.append(("iothreads", plan.iothreads, guest.iothreads))
    if plan.iothreadpins is not None:
        out.append((
            "cputune/iothreadpin",
            {p.iothread: str(p.cpus) for p in plan.iothreadpins},
            {p.iothread: str(p.cpus) for p in guest.iothreadpins},
        ))  # fmt: skip
    if plan.vcpusched is not None:
        out.append(("cputune/vcpusched", _sched_map(plan.vcpusched), _sched_map(guest.vcpusched)))
    if plan.emulatorsched is not None:
        out.append(("cputune/emulatorsched", plan.emulatorsched, guest.emulatorsched))
    if plan.iothreadsched is not None:
        io_want = _iothread_sched_map(plan.iothreadsched)
        out.append(("cputune/iothreadsched", io_want, _iothread_sched_map(guest.iothreadsched)))
    if plan.cachetunes is not None:
        out.append(("cputune/cachetune", _cache_map(plan.cachetunes), _cache_map(guest.cachetunes)))
    return out


def _numa_pairs(plan: Plan, guest: GuestSpec) -> list[_Pair]:
    if plan.numatune is None:
        return []
    return [
        (
            "numatune/memory",
            (plan.numatune.mode, str(plan.numatune.nodeset)),
            (guest.numatune_mode, str(guest.numatune_nodeset or "")),
        ),
        (
            "numatune/memnode",
            {m.cellid: (m.mode, str(m.nodeset)) for m in plan.numatune.memnodes},
            {m.cellid: (m.mode, str(m.nodeset)) for m in guest.memnodes},
        ),
    ]


def _cpu_pairs(plan: Plan, guest: GuestSpec) -> list[_Pair]:
    out: list[_Pair] = []
    if plan.cpu is None:
        return out
    if plan.cpu.mode is not None:
        out.append(("cpu/@mode", plan.cpu.mode, guest.cpu_mode))
    if plan.cpu.topology is not None:
        out.append(("cpu/topology", plan.cpu.topology, guest.topology))
    if plan.cpu.numa_cells is not None:
        out.append((
            "cpu/numa",
            {c.id: (str(c.cpus), c.memory_kib) for c in plan.cpu.numa_cells},
            {c.id: (str(c.cpus), c.memory_kib) for c in guest.numa_cells},
        ))  # fmt: skip
    return out


def _device_pairs(plan: Plan, guest: GuestSpec) -> list[_Pair]:
    out: list[_Pair] = []
    if plan.features is not None and plan.features.hyperv is not None:
        want_hv = sorted(f.name for f in plan.features.hyperv if f.state)
        out.append(("features/hyperv", want_hv, sorted(f.name for f in guest.hyperv if f.state)))
    if plan.memory_backing is not None:
        mb = guest.memory_backing
        out.append(("memoryBacking/hugepages", plan.memory_backing.hugepages, bool(mb and mb.hugepages)))
        out.append(("memoryBacking/locked", plan.memory_backing.locked, bool(mb and mb.locked)))
    if plan.memballoon is not None:
        got = guest.memballoon.model if guest.memballoon else None
        out.append(("devices/memballoon", plan.memballoon.model, got))
    if plan.intent is not None:
        out.append(("metadata/vmtune:tuning", plan.intent, guest.intent))
    return out
