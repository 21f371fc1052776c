"""Memory placement rules VT201-VT206: numatune vs. vCPU nodes, guest NUMA cells, hugepages, per-node
capacity.

Why (DESIGN.md): NUMA misses cost 10%+ CPU and up to ~80% memory bandwidth (STREAM). With hugepages or
preallocation, memory lands on the node of the thread that first touches it unless ``<numatune>`` binds it,
so vCPU pinning and numatune go together; a wide guest needs guest NUMA cells mirroring the host nodes it
spans, each bound with ``<memnode>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from vmtune.core.audit.common import apply_cmd
from vmtune.core.audit.engine import (
    AuditContext,
    Hit,
    guest_rule,
    host_rule,
    is_dedicated,
)
from vmtune.core.guest import GuestSpec
from vmtune.core.ledger.memory import memory_book, memory_homes
from vmtune.core.ledger.tenant import same_guest
from vmtune.core.plan import Level
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.units import PAGE_2M, fmt_kib_brief, page_label

__all__ = ["vt201", "vt202", "vt203", "vt204", "vt205", "vt206"]

# libvirt's default numatune mode is strict; interleave spreads on purpose, so "remote" means nothing there
_NON_LOCAL_MODES = frozenset({"interleave"})


def _cpu_nodes(host: Host) -> list[int]:
    return [n.id for n in host.nodes if n.cpus]


def _cell_cpus(g: GuestSpec, cell_vcpus: CpuSet) -> CpuSet:
    """Host CPUs the vCPUs of a guest NUMA cell are pinned to (empty when any is unpinned)."""
    out = CpuSet()
    for vcpu in cell_vcpus:
        pin = g.pin_of(vcpu)
        if not pin:
            return CpuSet()
        out = out | pin
    return out


@guest_rule("VT201", "numatune node differs from the vCPUs' node (NUMA miss)", Level.WARNING)
def vt201(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    host = ctx.host
    host_nodes = CpuSet(n.id for n in host.nodes)
    fix = f"bind memory to the vCPUs' nodes: {apply_cmd(g)}"
    homes = memory_homes(host)
    binds: list[tuple[str, str | None, CpuSet, CpuSet]] = []  # (xpath, mode, nodeset, vCPU host CPUs)
    if g.numatune_nodeset is not None:
        binds.append(("/domain/numatune/memory", g.numatune_mode, g.numatune_nodeset, g.vcpu_cpus))
    cells = {c.id: c for c in g.numa_cells}
    for mn in g.memnodes:
        cell = cells.get(mn.cellid)
        cpus = _cell_cpus(g, cell.cpus) if cell is not None else CpuSet()
        binds.append((f"/domain/numatune/memnode[@cellid='{mn.cellid}']", mn.mode, mn.nodeset, cpus))
    for xpath, mode, nodeset, cpus in binds:
        missing = nodeset - host_nodes
        if missing:
            yield Hit(
                guest=g,
                location=xpath,
                message=f"memory bound to NUMA node {missing}, which this host doesn't have",
                fix=fix,
                severity=Level.ERROR,
            )
            continue
        if mode in _NON_LOCAL_MODES or not cpus:
            continue
        if xpath.endswith("/memory") and g.memnodes:
            continue  # per-cell memnodes decide; the global nodeset is only their union
        # a memory-less CPU node's memory is its nearest memory node's (ledger.memory_homes)
        remote = CpuSet(
            n for n in host.nodes_of(cpus) - nodeset if not (n in homes and homes[n].issubset(nodeset))
        )
        if remote:
            yield Hit(
                guest=g,
                location=xpath,
                message=f"vCPUs run on node {host.nodes_of(cpus)} but memory is bound to node {nodeset}: "
                f"accesses from node {remote} are remote",
                fix=fix,
            )


@guest_rule("VT202", "hugepages or locked/prealloc memory with pinned vCPUs but no numatune", Level.WARNING)
def vt202(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    mb = g.memory_backing
    if mb is None or not (mb.hugepages or mb.locked) or not g.vcpupins:
        return
    if g.numatune_nodeset is not None or g.memnodes or g.numatune_placement == "auto":
        return
    what = "hugepages" if mb.hugepages else "locked memory"
    yield Hit(
        guest=g,
        location="/domain/numatune",
        message=f"{what} with pinned vCPUs but no <numatune>: pages land wherever QEMU first touches them",
        fix=f"add <numatune><memory mode='strict' nodeset=.../> for the vCPUs' nodes: {apply_cmd(g)}",
    )


@guest_rule("VT203", "wide guest (spans nodes) without guest NUMA cells", Level.WARNING)
def vt203(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    host = ctx.host
    cpu_nodes = _cpu_nodes(host)
    if len(cpu_nodes) < 2 or g.numa_cells:
        return
    biggest = max(len(n.cpus) for n in host.nodes)
    spans = host.nodes_of(g.vcpu_cpus) if g.vcpupins else CpuSet()
    if g.vcpus > biggest:
        why = f"{g.vcpus} vCPUs exceed the largest host node ({biggest} CPUs)"
    elif len(spans) > 1 and is_dedicated(g, host):
        why = f"vCPUs are pinned across host nodes {spans}"
    else:
        return
    yield Hit(
        guest=g,
        location="/domain/cpu",
        message=f"wide guest without guest NUMA cells: {why}; the guest can't keep its memory local",
        fix=f"give it <cpu><numa> cells mirroring the host nodes: {apply_cmd(g)}",
    )


@guest_rule("VT204", "guest NUMA cells without memnode binding", Level.WARNING)
def vt204(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    if len(g.numa_cells) < 2 or len(_cpu_nodes(ctx.host)) < 2:
        return
    if g.numatune_nodeset is not None and len(g.numatune_nodeset) == 1:
        return  # all memory on one node: the cells are presentation only (VT201 checks that node)
    bound = {m.cellid for m in g.memnodes}
    unbound = [c.id for c in g.numa_cells if c.id not in bound]
    if unbound:
        yield Hit(
            guest=g,
            location=f"/domain/cpu/numa/cell[@id='{unbound[0]}']",
            message=f"guest NUMA cells {CpuSet(unbound)} have no <memnode>: their memory may sit on any "
            "host node",
            fix=f"bind each cell with <numatune><memnode cellid= nodeset=>: {apply_cmd(g)}",
        )


def _default_hugepage_kib(host: Host) -> int | None:
    sizes = sorted({hp.size_kib for n in host.nodes for hp in n.hugepages})
    if not sizes:
        return None
    # the kernel's default hugepage size is 2 MiB on x86 and 4K-granule arm64; otherwise the smallest listed
    return PAGE_2M if PAGE_2M in sizes else sizes[0]


def _free_pages(host: Host, nodes: CpuSet, size_kib: int) -> int:
    total = 0
    for node in host.nodes:
        if node.id in nodes:
            hp = node.hugepages_of(size_kib)
            total += hp.free if hp else 0
    return total


@guest_rule("VT205", "not enough free hugepages on the bound nodes", Level.ERROR)
def vt205(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    mb = g.memory_backing
    if mb is None or not mb.hugepages or g.running or g.memory_kib <= 0:
        return
    host = ctx.host
    default = _default_hugepage_kib(host)
    if default is None:
        return  # the host source says nothing about hugepages: unknown, not zero
    size = mb.page_size_kib or default
    all_nodes = CpuSet(n.id for n in host.nodes)
    # (where, host nodes, KiB) for each independent allocation
    demands: list[tuple[str, CpuSet, int]] = []
    cells = {c.id: c for c in g.numa_cells}
    if g.memnodes and g.numatune_mode not in _NON_LOCAL_MODES:
        for mn in g.memnodes:
            cell = cells.get(mn.cellid)
            if cell is not None:
                demands.append(
                    (f"/domain/numatune/memnode[@cellid='{mn.cellid}']", mn.nodeset, cell.memory_kib)
                )
    else:
        nodes = g.numatune_nodeset if g.numatune_nodeset is not None else all_nodes
        demands.append(("/domain/memoryBacking/hugepages", nodes, g.memory_kib))
    for xpath, nodes, kib in demands:
        need = -(-kib // size)
        free = _free_pages(host, nodes, size)
        if need > free:
            yield Hit(
                guest=g,
                location=xpath,
                message=f"needs {need} free {page_label(size)} hugepages on node {nodes}, host has {free}",
                fix=f"reserve them (echo N > /sys/devices/system/node/nodeN/hugepages/hugepages-{size}kB/"
                f"nr_hugepages) or re-plan onto nodes that have them: {apply_cmd(g)}",
            )


def _distinct(guests: Iterable[GuestSpec]) -> list[GuestSpec]:
    """Each guest once: a checked file that is also in ``--domains`` is one tenant, not two."""
    out: list[GuestSpec] = []
    for g in guests:
        if not any(same_guest(g, seen) for seen in out):
            out.append(g)
    return out


def _memory_reserve(guests: Iterable[GuestSpec]) -> int | None:
    """The smallest ``--memory-reserve`` a guest was planned with (None: vmtune's default): a plan made
    with a smaller reserve must not be called over capacity by the default one."""
    given = [g.intent.memory_reserve for g in guests if g.intent is not None and g.intent.memory_reserve]
    return min(given) if given else None


@host_rule(
    "VT206", "memory or hugepages bound to a node exceed what it holds (all tenants counted)", Level.ERROR
)
def vt206(ctx: AuditContext) -> Iterator[Hit]:
    guests = _distinct(ctx.guests)
    book = memory_book(ctx.host, guests, _memory_reserve(guests))
    by_name = {g.name: g for g in guests}
    for node, size, committed, capacity, holders in book.over():
        if size:
            what = f"{committed} x {size} hugepages bound to node {node}, which has {capacity}"
        else:
            room = book.node(node)
            reserve = fmt_kib_brief(room.reserve_kib if room else 0)
            what = (
                f"{fmt_kib_brief(committed)} bound to node {node}, which holds {fmt_kib_brief(capacity)} for "
                f"guests (MemTotal less hugepage pools and the {reserve} reserve)"
            )
        names = ", ".join(name for name, _ in holders)
        for name, amount in holders:
            g = by_name.get(name)
            if g is None:
                continue
            mine = f"{amount} pages" if size else fmt_kib_brief(amount)
            yield Hit(
                guest=g,
                location="/domain/numatune",
                message=f"{what}: held by {names} (this guest {mine})",
                fix="re-plan with the other guests as tenants so each fits its node: "
                + apply_cmd(g, "--domains DIR"),
            )
