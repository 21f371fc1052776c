"""Memory as a resource: what each node holds for guests, what the tenants commit there, what is left.

* **Capacity** of a node for guests' normal pages is its MemTotal minus its hugepage pools (the kernel
  took them out of normal use) minus the host reserve: ``--memory-reserve SIZE`` per node, by default
  ``default_reserve_kib`` (5 % of the node's MemTotal, at least 1 GiB: the kernel, QEMU's own overhead and
  the host's daemons need room on every node, as Nova's ``reserved_host_memory_mb`` and kubelet's
  ``--reserved-memory`` keep it). For hugepages it is ``nr_hugepages`` per size, without reserve: the
  operator set those pools aside for guests.
* **Committed** is what every other tenant binds there (``core.ledger.tenant.held_memory``); memory with no
  binding floats, and is counted against the host as a whole: a node's room is also capped by what the
  host has left after every bound and floating commitment.
* **Live** ``MemFree`` and ``free_hugepages`` are a second limit on a host that reports them. A running
  tenant's touched memory is in both views (committed, and missing from MemFree), so the two are never
  added up: a node's room is the smaller of (capacity - committed) and the live figure.
* A node with CPUs and no memory (MemTotal 0: memory-less initiators, CXL and HBM setups) takes its memory
  from its **memory home**, the nearest node(s) with memory by SLIT distance (``memory_homes``): the
  planner binds there, and sees the home's room as the node's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from vmtune.core.guest import GuestSpec
from vmtune.core.ledger.tenant import MemoryHolding, held_memory
from vmtune.core.topology.model import Host, HugePages, Node
from vmtune.cpuset import CpuSet
from vmtune.units import DEFAULT_HUGEPAGE_KIB, GIB, PAGE_2M, fmt_kib_brief, page_label

__all__ = [
    "MemoryBook",
    "NodeRoom",
    "PageRoom",
    "default_page_kib",
    "default_reserve_kib",
    "memory_book",
    "memory_homes",
]

RESERVE_FRACTION = 20
"""The default reserve is MemTotal / 20 (5 %) of each node ..."""
RESERVE_FLOOR_KIB = GIB
"""... and at least 1 GiB (never more than the node has)."""


def default_reserve_kib(mem_total_kib: int) -> int:
    """The host reserve of a node with ``mem_total_kib`` when ``--memory-reserve`` is not given."""
    return min(mem_total_kib, max(RESERVE_FLOOR_KIB, mem_total_kib // RESERVE_FRACTION))


def default_page_kib(host: Host) -> int:
    """The hugepage size ``<hugepages/>`` without ``<page size=>`` gets: 2 MiB where the host has that pool
    (x86, 4K-granule arm64), else its smallest one."""
    sizes = sorted({hp.size_kib for n in host.nodes for hp in n.hugepages})
    if not sizes or PAGE_2M in sizes:
        return DEFAULT_HUGEPAGE_KIB
    return sizes[0]


def memory_homes(host: Host) -> dict[int, CpuSet]:
    """Node with CPUs and MemTotal 0 -> the nearest node(s) with memory (SLIT; ties all kept). A node whose
    MemTotal the source does not give is not memory-less, only unknown."""
    with_memory = [n for n in host.nodes if n.mem_total_kib]
    homes: dict[int, CpuSet] = {}
    for node in host.nodes:
        if not node.cpus or node.mem_total_kib != 0 or not with_memory:
            continue
        far = {m.id: node.distance_to(m.id) or 20 for m in with_memory}
        nearest = min(far.values())
        homes[node.id] = CpuSet(i for i, d in far.items() if d == nearest)
    return homes


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRoom:
    """One node's hugepages of one size."""

    size_kib: int
    total: int
    committed: int
    live_free: int
    holders: tuple[tuple[str, int], ...] = ()
    """(tenant, pages) bound here."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRoom:
    """One node's normal memory, and its hugepages per size."""

    node: int
    capacity_kib: int | None
    """MemTotal - hugepage pools - reserve; None when the source does not give MemTotal."""
    reserve_kib: int
    committed_kib: int
    live_free_kib: int | None
    holders: tuple[tuple[str, int], ...] = ()
    """(tenant, KiB) bound here."""
    pages: tuple[PageRoom, ...] = ()

    def page(self, size_kib: int) -> PageRoom | None:
        return next((p for p in self.pages if p.size_kib == size_kib), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryBook:
    """Every node's memory for guests: capacity, what tenants commit, what floats, what is left."""

    nodes: tuple[NodeRoom, ...]
    floating_kib: int = 0
    floating_pages: Mapping[int, int] = field(default_factory=dict, hash=False)
    floaters: tuple[str, ...] = ()
    """Tenants with memory that floats (no binding)."""
    homes: Mapping[int, CpuSet] = field(default_factory=dict, hash=False)
    """``memory_homes``: where a memory-less CPU node's memory goes."""

    def node(self, node_id: int) -> NodeRoom | None:
        return next((n for n in self.nodes if n.node == node_id), None)

    def _host_slack(self) -> int | None:
        known = [n for n in self.nodes if n.capacity_kib is not None]
        if not known:
            return None
        return sum((n.capacity_kib or 0) - n.committed_kib for n in known) - self.floating_kib

    def _host_page_slack(self, size_kib: int) -> int:
        pages = [p for n in self.nodes if (p := n.page(size_kib)) is not None]
        return sum(p.total - p.committed for p in pages) - self.floating_pages.get(size_kib, 0)

    def room_kib(self, node_id: int) -> int | None:
        """Normal memory a new guest may bind to ``node_id`` (None: the host does not say)."""
        room = self.node(node_id)
        if room is None:
            return None
        limits = [room.live_free_kib, self._host_slack()]
        if room.capacity_kib is not None:
            limits.append(room.capacity_kib - room.committed_kib)
        known = [x for x in limits if x is not None]
        return max(0, min(known)) if known else None

    def room_pages(self, node_id: int, size_kib: int) -> int:
        room = self.node(node_id)
        page = room.page(size_kib) if room is not None else None
        if page is None:
            return 0
        return max(0, min(page.total - page.committed, page.live_free, self._host_page_slack(size_kib)))

    def view(self, host: Host) -> Host:
        """``host`` with each node's MemFree and free hugepages replaced by the room left for a new guest:
        every placement rule that asks "does this share fit the node" then asks the ledger."""
        return replace(host, nodes=tuple(self._node_view(n) for n in host.nodes))

    def _node_view(self, node: Node) -> Node:
        home = self.homes.get(node.id)
        if home is not None:
            rooms = [self.room_kib(h) for h in home]
            pools = {hp.size_kib for n in self.nodes if n.node in home for hp in n.pages}
            return replace(
                node,
                mem_free_kib=sum(r or 0 for r in rooms),
                hugepages=tuple(
                    HugePages(
                        size_kib=size,
                        total=sum(p.total for n in self.nodes if n.node in home and (p := n.page(size))),
                        free=sum(self.room_pages(h, size) for h in home),
                    )
                    for size in sorted(pools)
                ),
            )
        pages = tuple(
            HugePages(size_kib=hp.size_kib, total=hp.total, free=self.room_pages(node.id, hp.size_kib))
            for hp in node.hugepages
        )
        return replace(node, mem_free_kib=self.room_kib(node.id), hugepages=pages)

    def explain(self, node_id: int, size_kib: int | None = None) -> str:
        """Why ``node_id`` has the room it has: its capacity and who holds what (for exit 3)."""
        home = self.homes.get(node_id)
        if home is not None:
            why = "; ".join(self.explain(h, size_kib) for h in home)
            return f"node {node_id} has no memory, its nearest memory is on node {home}" + (
                f": {why}" if why else ""
            )
        room = self.node(node_id)
        if room is None:
            return ""
        if size_kib:
            page = room.page(size_kib)
            if page is None:
                return f"node {node_id} has no {page_label(size_kib)} pool"
            text = f"node {node_id} has {page.total} x {page_label(size_kib)}, {page.live_free} free now"
            return text + _held(page.holders, lambda n: f"{n} pages")
        if room.capacity_kib is None:
            return ""
        text = (
            f"node {node_id} holds {fmt_kib_brief(room.capacity_kib)} for guests "
            f"(reserve {fmt_kib_brief(room.reserve_kib)})"
        )
        return text + _held(room.holders, fmt_kib_brief)

    def floating(self) -> str:
        """Who floats over the host and how much (for exit 3; empty when nobody does)."""
        if not self.floating_kib:
            return ""
        who = ", ".join(self.floaters)
        return f"{fmt_kib_brief(self.floating_kib)} of {who} floats over the host (no binding)"

    def over(self) -> list[tuple[int, str, int, int, tuple[tuple[str, int], ...]]]:
        """(node, what, committed, capacity, holders) for every node where tenants commit more than it
        holds: normal memory in KiB (``what`` empty) or pages of one size (``what`` the size label)."""
        out: list[tuple[int, str, int, int, tuple[tuple[str, int], ...]]] = []
        for room in self.nodes:
            if room.capacity_kib is not None and room.committed_kib > room.capacity_kib:
                out.append((room.node, "", room.committed_kib, room.capacity_kib, room.holders))
            for page in room.pages:
                if page.committed > page.total:
                    out.append(
                        (room.node, page_label(page.size_kib), page.committed, page.total, page.holders)
                    )
        return out


def _held(holders: Sequence[tuple[str, int]], fmt: Callable[[int], str]) -> str:
    if not holders:
        return ", nothing held by other guests"
    shown = ", ".join(f"{name} {fmt(amount)}" for name, amount in holders[:6])
    more = f" and {len(holders) - 6} more" if len(holders) > 6 else ""
    return f", held by {shown}{more}"


def memory_book(host: Host, tenants: Iterable[GuestSpec], reserve_kib: int | None) -> MemoryBook:
    """The memory ledger of ``host`` with ``tenants`` (the guest being planned left out by the caller);
    ``reserve_kib`` is ``--memory-reserve`` per node (None: ``default_reserve_kib``)."""
    page_kib = default_page_kib(host)
    held: list[tuple[str, MemoryHolding]] = [
        (t.name, held_memory(t, default_page_kib=page_kib)) for t in sorted(tenants, key=lambda t: t.name)
    ]
    floating_pages: dict[int, int] = {}
    for _, h in held:
        for size, count in h.floating_pages.items():
            floating_pages[size] = floating_pages.get(size, 0) + count
    return MemoryBook(
        nodes=tuple(_node_room(node, held, reserve_kib) for node in host.nodes),
        floating_kib=sum(h.floating_kib for _, h in held),
        floating_pages=floating_pages,
        floaters=tuple(name for name, h in held if h.floating_kib or h.floating_pages),
        homes=memory_homes(host),
    )


def _node_room(node: Node, held: Sequence[tuple[str, MemoryHolding]], reserve_kib: int | None) -> NodeRoom:
    holders = tuple((name, h.nodes[node.id]) for name, h in held if h.nodes.get(node.id))
    pages = tuple(_page_room(node.id, hp, held) for hp in node.hugepages)
    capacity: int | None = None
    reserve = 0
    if node.mem_total_kib is not None:
        total = node.mem_total_kib
        reserve = default_reserve_kib(total) if reserve_kib is None else min(total, reserve_kib)
        pools = sum(hp.total * hp.size_kib for hp in node.hugepages)
        capacity = max(0, total - pools - reserve)
    return NodeRoom(
        node=node.id,
        capacity_kib=capacity,
        reserve_kib=reserve,
        committed_kib=sum(k for _, k in holders),
        live_free_kib=node.mem_free_kib,
        holders=holders,
        pages=pages,
    )


def _page_room(node_id: int, pool: HugePages, held: Sequence[tuple[str, MemoryHolding]]) -> PageRoom:
    key = (node_id, pool.size_kib)
    holders = tuple((name, h.pages[key]) for name, h in held if h.pages.get(key))
    return PageRoom(
        size_kib=pool.size_kib,
        total=pool.total,
        committed=sum(n for _, n in holders),
        live_free=pool.free,
        holders=holders,
    )
