"""``<numatune>``: the user's own binding kept, and mode ``preferred`` over several host nodes.

A guest that already binds its memory with ``interleave``, ``preferred`` or ``restrictive`` chose that
on purpose (interleave for bandwidth over nodes, preferred to allow overflow): without ``--memory-mode``
the mode and its nodeset stay (``user_binding``). ``strict`` is what vmtune itself writes, so a strict
nodeset follows the placement.

libvirt before 9.3 (QEMU's ``policy=preferred`` without MPOL_PREFERRED_MANY) takes ``preferred`` with one
node only and refuses the start otherwise ("NUMA memory tuning in 'preferred' mode only supports single
node"). So unless the caller knows the libvirt it writes for accepts more, every binding gets one node:
each guest cell's ``<memnode>`` already names its own node, and ``<memory>`` gets the first cell's node
(the kernel still falls back to other nodes when it is full: that is what preferred means).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Intent
from vmtune.core.plan import Level, Note, NumaTunePlan
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

__all__ = [
    "PREFERRED_MANY_SINCE",
    "at_home",
    "home_shares",
    "keep_user_binding",
    "single_node_preferred",
    "user_binding",
]

_USER_MODES = frozenset({"interleave", "preferred", "restrictive"})


def user_binding(guest: GuestSpec, intent: Intent, host: Host) -> tuple[str, CpuSet] | None:
    """(mode, nodeset) of the guest's own ``<numatune><memory>`` when it is kept: a mode vmtune never
    writes by itself, no ``--memory-mode``, and a nodeset of nodes this host has."""
    mode, nodeset = guest.numatune_mode, guest.numatune_nodeset
    if intent.memory_mode is not None or mode not in _USER_MODES or not nodeset:
        return None
    if not nodeset.issubset(CpuSet(n.id for n in host.nodes)) or guest.numatune_placement == "auto":
        return None
    return mode, nodeset


def keep_user_binding(plan: NumaTunePlan, kept: tuple[str, CpuSet], notes: list[Note]) -> NumaTunePlan:
    """``plan`` with the user's mode and nodeset, each cell's ``<memnode>`` in that mode too."""
    mode, nodeset = kept
    notes.append(
        Note(
            topic="memory",
            message=f"kept the guest's own binding: mode {mode} over node(s) {nodeset} (--memory-mode to "
            f"let vmtune bind to the vCPUs' node(s) {plan.nodeset})",
            xpath="/domain/numatune/memory",
        )
    )
    memnodes = tuple(replace(m, mode=mode) for m in plan.memnodes)
    return replace(plan, mode=mode, nodeset=nodeset, memnodes=memnodes)


PREFERRED_MANY_SINCE = (9, 3)
"""The libvirt version that accepts ``preferred`` with a nodeset of several nodes."""


def single_node_preferred(
    plan: NumaTunePlan, notes: list[Note], *, libvirt_version: tuple[int, int] | None = None
) -> NumaTunePlan:
    """``plan`` with one node per ``preferred`` binding, unless ``libvirt_version`` accepts more."""
    if plan.mode != "preferred" or (libvirt_version is not None and libvirt_version >= PREFERRED_MANY_SINCE):
        return plan
    wide = len(plan.nodeset) > 1
    memnodes = tuple(
        replace(m, nodeset=CpuSet([m.nodeset.first()])) if m.mode == "preferred" and len(m.nodeset) > 1 else m
        for m in plan.memnodes
    )
    if not wide and memnodes == plan.memnodes:
        return plan
    first = memnodes[0].nodeset.first() if memnodes else plan.nodeset.first()
    since = ".".join(map(str, PREFERRED_MANY_SINCE))
    version = "unknown" if libvirt_version is None else ".".join(map(str, libvirt_version))
    notes.append(
        Note(
            topic="memory",
            level=Level.WARNING if not memnodes else Level.INFO,
            message=f"preferred over nodes {plan.nodeset}: libvirt before {since} (here: {version}) takes "
            f"preferred with one node only, so <memory> prefers node {first}"
            + (" and each guest cell's <memnode> its own node" if memnodes else "")
            + "; use --memory-mode strict or interleave to bind to every node",
            xpath="/domain/numatune/memory",
        )
    )
    return replace(plan, nodeset=CpuSet([first]), memnodes=memnodes)


def at_home(plan: NumaTunePlan, homes: Mapping[int, CpuSet], notes: list[Note]) -> NumaTunePlan:
    """``plan`` with every memory-less CPU node replaced by its memory home (``ledger.memory_homes``): the
    kernel cannot allocate from a node with no memory, so a strict binding there fails every allocation."""
    moved = {n: homes[n] for n in plan.nodeset if n in homes}
    if not moved:
        return plan

    def home(nodes: CpuSet) -> CpuSet:
        return CpuSet().union(*(homes.get(n, CpuSet([n])) for n in nodes))

    notes.append(
        Note(
            topic="memory",
            message="; ".join(f"node {n} has CPUs but no memory: its memory is bound to node {h}, the "
                              "nearest with memory (SLIT)" for n, h in moved.items()),
            xpath="/domain/numatune",
        )
    )  # fmt: skip
    memnodes = tuple(replace(m, nodeset=home(m.nodeset)) for m in plan.memnodes)
    return replace(plan, nodeset=home(plan.nodeset), memnodes=memnodes)


def home_shares(shares: Mapping[int, int], homes: Mapping[int, CpuSet]) -> dict[int, int]:
    """Per-node memory of the cells moved to the memory homes (an even split over a home of several)."""
    out: dict[int, int] = {}
    for node, kib in shares.items():
        home = list(homes.get(node, CpuSet([node])))
        for i, h in enumerate(home):
            part = kib // len(home) + (1 if i < kib % len(home) else 0)
            out[h] = out.get(h, 0) + part
    return out
