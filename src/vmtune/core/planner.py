"""plan_guest: decide where a guest's vCPUs, emulator, iothreads and memory go, and what topology it sees.

Pure and deterministic. ``plan_guest`` reads as its steps, each explained by a Note (``plan --explain``); the
steps live in ``core.planning`` and read one ``Job`` (``planning.job``):

1. resolve the intent (profiles + knobs) and build the ledger: online - reserved - other tenants' pins,
   the guest's own current pins counting as free for itself (``core.ledger``); a ``shared`` guest goes
   to ``plan_shared_pool`` and a ``mixed`` one to ``plan_mixed`` instead (``planning.policies``), the
   others to ``plan_dedicated`` (``planning.dedicated``);
2. ``place_vcpus`` (``planning.vcpus``): the requested core kind on hybrid hosts (latency/realtime: the big
   cores), the node of passthrough PCI devices, the hugepage size node choice needs free, then whole cores
   per the thread policy in one node when one fits, else the fewest closest nodes, whole idle cache groups
   (``placement.numa`` + ``placement.allocator``); the current pins instead when they are as good;
   ``place_truthfully`` then makes the pins ones a guest topology can tell (an odd guest on 2-thread
   cores gets an offline vCPU on its lone vCPU's sibling; a kept topology is followed);
3. ``place_emulator``: emulator and iothreads (``placement.emulator``);
4. ``plan_layout`` (``planning.layout``): guest topology, NUMA cells and vCPU pins (``tuning.guesttopo``).
   A guest that already has cells, or that vmtune shaped before, keeps its shape (it is the guest's ABI)
   unless ``--reshape``: ``plan_kept_cells`` (``planning.dedicated``) binds its cells to host nodes
   (``placement.cells``) and the topology is left alone; ``keep_abi`` (the hook) moreover returns only the
   host binding;
5. ``vcpu_cpuset`` and ``plan_numatune`` (``planning.layout``);
6. device/profile tuning (``tuning.devices``) merged in by ``merge_tuning`` (``planning.job``);
7. realtime: FIFO for an emulator and IOThreads that have CPUs of their own (``tuning.rtthreads``);
   ``--cache-share``: the ``<cachetune>`` of the L3 instances the vCPUs sit on (``tuning.cachetune``); both
   here, on the finished plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.bounds import check_bounds
from vmtune.core.intent.model import CpuPolicy, Intent
from vmtune.core.intent.profiles import resolve
from vmtune.core.ledger.pool import build_ledger
from vmtune.core.plan import Plan
from vmtune.core.planning.dedicated import plan_dedicated, plan_kept_cells
from vmtune.core.planning.job import Job
from vmtune.core.planning.policies import plan_mixed, plan_shared_pool
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.tuning.cachetune import plan_cachetune
from vmtune.core.tuning.iothreads import keep_iothreadsched, spread_iothreads
from vmtune.core.tuning.rtthreads import rt_helper_sched
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["plan_guest"]


def plan_guest(
    *,
    host: Host,
    guest: GuestSpec,
    tenants: Sequence[GuestSpec],
    intent: Intent,
    caps: HostCaps | None = None,
    keep_abi: bool = False,
) -> Plan:
    """The plan for ``guest``; with ``keep_abi`` (an incoming guest: migrate, restore) only its host
    binding, so nothing the guest sees changes."""
    if guest.vcpus < 1:
        raise InputError(f"{guest.source}: /domain/vcpu must be at least 1, got {guest.vcpus}")
    resolved = resolve(intent, guest)
    check_bounds(host=host, guest=guest, numa=resolved.numa, caps=caps)
    ledger = build_ledger(host=host, guest=guest, tenants=tenants, reserve=resolved.reserve,
                          memory_reserve_kib=intent.memory_reserve)  # fmt: skip
    # every step below sees each node's MemFree / free hugepages as the room the memory ledger leaves
    host = ledger.memory.view(host)
    notes = list(ledger.notes)
    keep = keep_abi or (not intent.reshape and (bool(guest.numa_cells) or guest.intent is not None))
    job = Job(host=host, guest=guest, intent=intent, resolved=resolved, ledger=ledger, caps=caps, keep=keep,
              tenants=tenants)  # fmt: skip
    if resolved.cpu_policy is CpuPolicy.SHARED:
        plan = plan_shared_pool(job, notes)
    elif resolved.cpu_policy is CpuPolicy.MIXED:
        plan = plan_mixed(job, notes)
    elif keep and guest.numa_cells and not resolved.numa.off:
        plan = plan_kept_cells(job, notes)
    else:
        plan = plan_dedicated(job, notes)
    plan = keep_iothreadsched(spread_iothreads(plan, job.guest), job.guest)
    plan = _with_cachetune(job, _with_rt_helpers(job, plan))
    # --reshape acts once: the stored intent leaves it out, so the next re-plan keeps the new shape
    plan = replace(plan, intent=replace(intent, reshape=False))
    return plan.binding_only() if keep_abi else plan


def _with_rt_helpers(job: Job, plan: Plan) -> Plan:
    """Step 7: ``<emulatorsched>``/``<iothreadsched>`` of a realtime guest."""
    emulator, iothreads, notes = rt_helper_sched(plan, realtime=job.resolved.realtime, caps=job.caps,
                                                 housekeeping=job.ledger.housekeeping)  # fmt: skip
    if not notes:
        return plan
    return replace(plan, emulatorsched=emulator, iothreadsched=iothreads, notes=(*plan.notes, *notes))


def _with_cachetune(job: Job, plan: Plan) -> Plan:
    """Step 7: cache ways on the L3 instances of the planned vCPU pins (a shared pool has none)."""
    pinned = job.resolved.cpu_policy is not CpuPolicy.SHARED and plan.vcpupins is not None
    cpus = CpuSet().union(*(p.cpus for p in plan.vcpupins or ())) if pinned else CpuSet()
    tunes, notes = plan_cachetune(host=job.host, guest=job.guest, share=job.intent.cache_share, caps=job.caps,
                                  tenants=job.tenants, vcpu_cpus=cpus, force=job.resolved.force)  # fmt: skip
    if tunes is None and not notes:
        return plan
    return replace(plan, cachetunes=tunes, notes=(*plan.notes, *notes))
