"""Cache allocation rules (VT1xx, the cpu family): guests' exclusive ``<cachetune>`` ways on one cache.

With the host's resctrl known (a probed sysfs root, or the live host), the ways are counted exactly as the
planner counts them (``core.tuning.cachetune.cache_budgets``: free = ``cbm_mask`` minus the default group,
shareable bits and groups libvirt did not make), so a fresh ``--cache-share`` plan never trips the rule.
Without resctrl the only bound left is the cache itself: the sizes on one cache instance summed against
the host topology's size of that cache.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmtune.core.audit.common import apply_cmd, names
from vmtune.core.audit.engine import AuditContext, Hit, host_rule
from vmtune.core.guest import GuestSpec
from vmtune.core.plan import Level
from vmtune.core.tuning.cachetune import cache_budgets

__all__ = ["vt110"]

XPATH = "/domain/cputune/cachetune"


def _hits(guests: list[tuple[GuestSpec, str]], what: str, ctx: AuditContext) -> Iterator[Hit]:
    everyone = [g for g, _ in guests]
    for guest, own in guests:
        others = [g for g in everyone if g is not guest]
        yield Hit(
            guest=guest,
            location=XPATH,
            message=f"{what}: {own} here, with {names(others)}; libvirt refuses to start the guest that "
            "finds no free ways left",
            fix=f"give the guests smaller shares: {apply_cmd(guest, '--cache-share N%')} (its tenants "
            "counted), or shrink the default resctrl group",
        )


def _by_resctrl(ctx: AuditContext) -> Iterator[Hit]:
    assert ctx.caps.resctrl is not None
    for budget in cache_budgets(host=ctx.host, resctrl=ctx.caps.resctrl, guests=ctx.guests):
        if len(budget.asked) < 2 or budget.holds():
            continue
        asked = dict(budget.asked)
        res = budget.resource
        runs = "+".join(map(str, budget.runs)) or "0"
        what = (
            f"{res.name} cache {budget.cache_id}: guests ask for {budget.used} exclusive way(s), "
            f"{budget.free_ways} of its {res.ways} are free of the default and other groups (contiguous "
            f"runs of {runs}; each guest's ways must sit in one)"
        )
        guests = [(g, f"{asked[g.name]} way(s)") for g in ctx.guests if g.name in asked]
        yield from _hits(guests, what, ctx)


def _by_size(ctx: AuditContext) -> Iterator[Hit]:
    sizes = {(g.level, g.cache_id): g.size_kib for g in ctx.host.caches if g.cache_id is not None}
    asked: dict[tuple[int, int, str], list[tuple[GuestSpec, int]]] = {}
    for guest in ctx.guests:
        for tune in guest.cachetunes:
            for c in tune.caches:
                asked.setdefault((c.level, c.id, c.type), []).append((guest, c.size_bytes))
    for (level, cache_id, kind), entries in sorted(asked.items(), key=lambda kv: kv[0]):
        size_kib = sizes.get((level, cache_id))
        total = sum(b for _, b in entries)
        if size_kib is None or len({id(g) for g, _ in entries}) < 2 or total <= size_kib * 1024:
            continue
        what = (
            f"L{level} cache {cache_id} ({kind}): guests ask for {total // 1024} KiB exclusive, the cache "
            f"holds {size_kib} KiB"
        )
        yield from _hits([(g, f"{b // 1024} KiB") for g, b in entries], what, ctx)


@host_rule("VT110", "exclusive cache allocations of two domains exceed a cache", Level.ERROR)
def vt110(ctx: AuditContext) -> Iterator[Hit]:
    yield from (_by_resctrl(ctx) if ctx.caps.resctrl is not None else _by_size(ctx))
