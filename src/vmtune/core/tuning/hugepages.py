"""Hugepage backing: pick a page size the bound NUMA nodes have free, or explain why not.

Decision (what an operator would do):

* ``latency`` takes hugepages only when the bound nodes have enough free (1G first, then 2M); otherwise
  it keeps normal pages with a Note and the reservation command in the advice.
* ``realtime`` and an explicit ``--hugepages SIZE`` *require* them: QEMU would fail to start the guest
  ("unable to map backing store for guest RAM: Cannot allocate memory") or, worse, fall over on a later
  boot when another guest took the pages. Planning such a guest is infeasible (exit 3, needed vs. free
  and the command that reserves them); ``--force`` plans it anyway with a WARNING, for an operator who
  reserves pages before the guest starts.
* A source that reports no hugepage pools at all (``virsh capabilities`` without ``<pages>``) can't be
  checked: plan with a WARNING instead of refusing.

Each bound node needs the pages of the guest cell the planner gives it (cells of 15 + 5 GiB need 15 and 5
pages of 1G), or an even share when no cells are known;
QEMU also needs the memory size to be a multiple of the page size, so 1G pages are chosen only then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vmtune.core.guest import GuestSpec, MemoryBacking
from vmtune.core.intent.model import Resolved
from vmtune.core.plan import Level, Note
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.units import MIB, PAGE_1G, PAGE_2M, page_label

__all__ = ["HugepageNeed", "MemoryTuning", "memory_tuning", "sysfs_nr_path"]

_SIZES = (PAGE_1G, PAGE_2M)
_XP = "/domain/memoryBacking"


@dataclass(frozen=True, slots=True, kw_only=True)
class HugepageNeed:
    """Pages of one size one node must have free for this guest."""

    node: int
    size_kib: int
    need: int
    free: int
    total: int

    @property
    def short(self) -> int:
        return max(0, self.need - self.free)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryTuning:
    memory_backing: MemoryBacking | None
    notes: tuple[Note, ...]
    shortfall: tuple[HugepageNeed, ...] = ()
    """Nodes that lack free pages of the wanted size (for the reservation advice)."""


def sysfs_nr_path(node: int, size_kib: int) -> str:
    return f"/sys/devices/system/node/node{node}/hugepages/hugepages-{size_kib}kB/nr_hugepages"


def _needs(
    host: Host, nodes: CpuSet, memory_kib: int, size_kib: int, shares: Mapping[int, int] | None = None
) -> tuple[HugepageNeed, ...] | None:
    """Per-node needs for one page size: each node's part of the guest cells written (``shares``), else
    the memory spread evenly; None when no bound node reports any hugepage pool."""
    ids = list(nodes)
    if not any(node.hugepages for node in host.nodes if node.id in nodes):
        return None
    even = -(-memory_kib // len(ids))
    out: list[HugepageNeed] = []
    for node_id in ids:
        share = shares.get(node_id, 0) if shares else even
        node = host.node(node_id)
        pool = node.hugepages_of(size_kib) if node is not None else None
        out.append(
            HugepageNeed(
                node=node_id,
                size_kib=size_kib,
                need=-(-share // size_kib),
                free=pool.free if pool else 0,
                total=pool.total if pool else 0,
            )
        )
    return tuple(out)


def _bound_nodes(host: Host, nodes: CpuSet) -> CpuSet:
    if nodes:
        return nodes
    with_memory = CpuSet(n.id for n in host.nodes if n.mem_total_kib or n.cpus)
    return with_memory or CpuSet(n.id for n in host.nodes)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    """One ``memory_tuning`` call: what its steps read, and the Notes they add."""

    host: Host
    guest: GuestSpec
    resolved: Resolved
    cur: MemoryBacking
    notes: list[Note] = field(default_factory=list)

    @property
    def locked(self) -> bool:
        return self.cur.locked or self.resolved.realtime

    @property
    def noshare(self) -> bool:
        return self.cur.nosharepages or self.resolved.realtime

    def backed(self, size: int | None, short: tuple[HugepageNeed, ...] = ()) -> MemoryTuning:
        locked, noshare = self.locked, self.noshare
        return _backing(
            size, locked=locked, noshare=noshare, resolved=self.resolved, notes=self.notes, short=short
        )

    def base_only(self, short: tuple[HugepageNeed, ...] = ()) -> MemoryTuning:
        return _base_only(self.cur, self.locked, self.noshare, self.notes, short)


def memory_tuning(
    *,
    host: Host,
    guest: GuestSpec,
    resolved: Resolved,
    nodes: CpuSet,
    shares: Mapping[int, int] | None = None,
) -> MemoryTuning:
    """The ``<memoryBacking>`` for ``guest`` bound to ``nodes``; ``shares`` is the memory each node's guest
    cell gets (what the planner writes), so the pages counted are the pages the XML binds."""
    job = _Job(host=host, guest=guest, resolved=resolved, cur=guest.memory_backing or MemoryBacking())
    if resolved.hugepages_off:
        return _normal_pages_asked(job)
    if not (resolved.hugepages_kib or resolved.hugepages_if_free):
        return MemoryTuning(memory_backing=None, notes=())
    if guest.running and job.cur.hugepages:
        # A running guest already holds its pages, so they don't show as free; re-planning it (hook,
        # --live) must not call its own pages missing.
        job.notes.append(
            Note(topic="memory", message="running guest keeps its hugepages (not counted as free)")
        )
        return job.backed(job.cur.page_size_kib or resolved.hugepages_kib)
    bound = _bound_nodes(host, nodes)
    mem = guest.memory_kib
    sizes = (resolved.hugepages_kib,) if resolved.hugepages_kib else tuple(s for s in _SIZES if mem % s == 0)
    where = f"node{'s' if len(bound) > 1 else ''} {bound}"
    checked: list[tuple[int, tuple[HugepageNeed, ...]]] = []
    for size in sizes:
        needs = _needs(host, bound, mem, size, shares if shares and set(shares) == set(bound) else None)
        if needs is None:
            return _no_pools(job, where)
        checked.append((size, needs))
        if all(n.short == 0 for n in needs):
            job.notes.append(
                _note(
                    f"{page_label(size)} hugepages on {where}: "
                    + ", ".join(f"node {n.node} needs {n.need}, {n.free} free" for n in needs)
                    + " (fewer TLB misses; bound with numatune so pages come from the vCPUs' node)"
                )
            )
            return job.backed(size)
    if not checked:
        return _no_size_divides(job)
    return _pages_short(job, checked)


def _normal_pages_asked(job: _Job) -> MemoryTuning:
    """``--hugepages none``: normal pages (a realtime guest's memory stays locked)."""
    resolved = job.resolved
    if not (job.cur.hugepages or resolved.realtime):
        return MemoryTuning(memory_backing=None, notes=())
    msg = "--hugepages none: normal pages"
    if resolved.realtime:
        msg += "; realtime memory is still locked, but page faults and TLB misses stay (VT404)"
    job.notes.append(_note(msg, Level.WARNING if resolved.realtime else Level.INFO))
    return MemoryTuning(
        memory_backing=MemoryBacking(hugepages=False, locked=job.locked, nosharepages=job.noshare),
        notes=tuple(job.notes),
    )


def _no_pools(job: _Job, where: str) -> MemoryTuning:
    """The source reports no hugepage pools: required pages are planned unchecked, optional ones dropped."""
    chosen = job.resolved.hugepages_kib
    if job.resolved.hugepages_required:
        kind = "hugepages" if not chosen else f"{page_label(chosen)} pages"
        job.notes.append(
            _note(
                f"{job.host.name} reports no hugepage pools for {where}: can't check that "
                f"{job.guest.memory_kib // MIB} MiB of {kind} are free; "
                "the guest fails to start if they are not",
                Level.WARNING,
            )
        )
        return job.backed(chosen)
    job.notes.append(Note(topic="memory", message=f"{job.host.name} reports no hugepage pools: normal pages"))
    return job.base_only()


def _no_size_divides(job: _Job) -> MemoryTuning:
    """QEMU needs the memory to be a multiple of the page size (1000 MiB with 2M pages is, 1001.5 MiB not)."""
    msg = f"guest memory {job.guest.memory_kib} KiB is not a multiple of any hugepage size"
    if job.resolved.hugepages_required:
        raise InfeasibleError(f"{job.guest.name}: {msg}; round <memory> to a multiple of 2 MiB")
    job.notes.append(Note(topic="memory", message=f"{msg}: normal pages"))
    return job.base_only()


def _pages_short(job: _Job, checked: list[tuple[int, tuple[HugepageNeed, ...]]]) -> MemoryTuning:
    """Not enough free pages of any size: infeasible when required (unless ``--force``), else normal pages;
    the reservation command goes in the message either way."""
    resolved = job.resolved
    size, needs = checked[0]
    short = tuple(n for n in needs if n.short)
    detail = "; ".join(
        f"node {n.node}: needs {n.need} x {page_label(n.size_kib)}, {n.free} free of {n.total}" for n in short
    )
    fix = "; ".join(f"echo {n.total + n.short} > {sysfs_nr_path(n.node, n.size_kib)}" for n in short)
    for other, other_needs in checked[1:]:
        # Say why the smaller size did not do either, so the operator can pick which pool to grow.
        detail += (
            f" ({page_label(other)}: "
            + ", ".join(f"node {n.node} needs {n.need}, {n.free} free" for n in other_needs)
            + ")"
        )
    if resolved.hugepages_required and not resolved.force:
        what = "realtime needs locked hugepages" if resolved.realtime else "--hugepages asks for them"
        raise InfeasibleError(
            f"{job.guest.name}: not enough free hugepages ({what}): {detail}. Reserve them ({fix}) "
            "or pass --force to plan anyway"
        )
    if resolved.hugepages_required:
        job.notes.append(
            _note(
                f"--force: planning {page_label(size)} hugepages that are not free ({detail}); "
                f"the guest fails to start until they are reserved: {fix} (VT205)",
                Level.WARNING,
            )
        )
        return job.backed(size, short)
    job.notes.append(
        _note(f"not enough free hugepages ({detail}): normal pages; reserve them to get hugepages")
    )
    return job.base_only(short)


def _note(message: str, level: Level = Level.INFO) -> Note:
    """A memory Note that points at ``<memoryBacking>``."""
    return Note(topic="memory", level=level, message=message, xpath=_XP)


def _backing(
    size: int | None,
    *,
    locked: bool,
    noshare: bool,
    resolved: Resolved,
    notes: list[Note],
    short: tuple[HugepageNeed, ...],
) -> MemoryTuning:
    if resolved.realtime:
        notes.append(
            _note(
                "realtime: memory locked (never swapped or migrated by the host) and not merged by "
                "KSM (nosharepages: no copy-on-write faults)"
            )
        )
    return MemoryTuning(
        memory_backing=MemoryBacking(hugepages=True, page_size_kib=size, locked=locked, nosharepages=noshare),
        notes=tuple(notes),
        shortfall=short,
    )


def _base_only(
    cur: MemoryBacking,
    locked: bool,
    noshare: bool,
    notes: list[Note],
    short: tuple[HugepageNeed, ...] = (),
) -> MemoryTuning:
    backing = None
    if (locked, noshare) != (cur.locked, cur.nosharepages):
        backing = MemoryBacking(
            hugepages=cur.hugepages, page_size_kib=cur.page_size_kib, locked=locked, nosharepages=noshare
        )
    return MemoryTuning(memory_backing=backing, notes=tuple(notes), shortfall=short)
