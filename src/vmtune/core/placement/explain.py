"""The planner's explanations: Notes a KVM operator reads in ``vmtune plan --explain``, and exit-3 messages.

Kept apart from the decisions so the wording can be tuned without touching the algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Fit, ThreadPolicy
from vmtune.core.placement.allocator import is_cache_level
from vmtune.core.placement.numa import ANY_NODE, Failure, Placement
from vmtune.core.plan import Level, Note
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.units import fmt_kib_brief

__all__ = ["cache_notes", "cpu_note", "infeasible_message", "numa_note"]

_POLICY_WORDS = {
    ThreadPolicy.PREFER: "whole cores preferred (thread policy prefer)",
    ThreadPolicy.ISOLATE: "one whole core per vCPU, siblings left empty (thread policy isolate)",
    ThreadPolicy.REQUIRE: "whole cores required (thread policy require)",
}
_UNITS = {
    ThreadPolicy.PREFER: "free CPUs",
    ThreadPolicy.ISOLATE: "free whole cores",
    ThreadPolicy.REQUIRE: "CPUs on free whole cores",
}


def cpu_note(*, host: Host, policy: ThreadPolicy, cpus: Sequence[int], partial: bool) -> Note:
    cores = {c.index for c in (host.core_of(cpu) for cpu in cpus) if c is not None}
    text = (
        f"{len(cpus)} vCPU(s) pinned one-to-one to host CPUs {CpuSet(cpus)} on {len(cores)} physical "
        f"core(s): {_POLICY_WORDS[policy]}"
    )
    if partial:
        return Note(
            topic="cpu",
            level=Level.WARNING,
            message=text + "; not enough wholly free cores left, so some vCPUs share a physical core with "
            "another guest (SMT siblings lose ~30% each when both are busy)",
            xpath="/domain/cputune/vcpupin",
        )
    return Note(topic="cpu", message=text, xpath="/domain/cputune/vcpupin")


def numa_note(
    *,
    host: Host,
    guest: GuestSpec,
    placement: Placement,
    pci_node: int | None,
    asked: int | None = None,
    fit: Fit = Fit.PACK,
) -> Note:
    """``asked``: the node count ``--numa N`` asked for (None: auto)."""
    shares = placement.shares
    mem = f" and {fmt_kib_brief(guest.memory_kib)}" if guest.memory_kib else ""
    if shares[0].node == ANY_NODE:
        return Note(
            topic="numa", message=f"--numa off: vCPUs on node(s) {host.nodes_of(CpuSet(placement.cpus))}"
        )
    if len(shares) == 1:
        node = shares[0].node
        others = [n for n in placement.candidates if n != node]
        if pci_node is not None and node == pci_node:
            why = "the node of its passthrough device(s)"
        elif others:
            room = (
                "least free room that holds it" if fit is Fit.PACK else "most free room (--numa-fit spread)"
            )
            why = f"best cache fit, then the {room}, among nodes {CpuSet(placement.candidates)}"
        else:
            why = "the only node with room"
        text = f"fits one NUMA node: node {node} holds its {guest.vcpus} vCPU(s){mem} ({why})"
        if pci_node is not None and node != pci_node:
            text += f"; the device's node {pci_node} has no room"
        return Note(topic="numa", message=text)
    split = ", ".join(
        f"node {s.node}: {len(s.pick.cpus)} vCPU(s)"
        + (f" + {fmt_kib_brief(s.memory_kib)}" if s.memory_kib else "")
        for s in shares
    )
    why = (
        f"split over {len(shares)} nodes as --numa {asked} asks"
        if asked
        else f"too big for one node, spans the {len(shares)} closest nodes"
    )
    how = (
        "the fewest cache groups, then the rest of the free room left in one piece (--numa-fit pack)"
        if fit is Fit.PACK and not asked
        else "as even as the nodes' room and cache groups allow"
    )
    return Note(
        topic="numa",
        message=f"{why} ({split}, {how}); the guest gets one "
        "NUMA cell per host node, with the host's distances between them, so its kernel keeps memory local",
        xpath="/domain/cpu/numa",
    )


def cache_notes(*, host: Host, placement: Placement) -> list[Note]:
    notes: list[Note] = []
    for share in placement.shares:
        for use in share.pick.groups:
            if not is_cache_level(use.level):
                continue
            cache = host.caches[use.key] if 0 <= use.key < len(host.caches) else None
            size = f", {fmt_kib_brief(cache.size_kib)}" if cache and cache.size_kib else ""
            state = "idle before this guest" if use.idle else "shared with another guest"
            reason = f": {use.reason}" if use.reason else ""
            notes.append(
                Note(
                    topic="cache",
                    level=Level.INFO,
                    message=f"L{use.level} group CPUs {use.cpus}{size}: "
                    f"{'all of it' if use.whole else 'part of it'}, {state}{reason}",
                )
            )
    return notes


def infeasible_message(
    *, guest: GuestSpec, policy: ThreadPolicy, failure: Failure, hugepage_kib: int | None
) -> str:
    free = ", ".join(f"node {n}: {u}" for n, u in failure.units) or "none"
    text = f"{guest.name}: needs {guest.vcpus} vCPU(s) with {_POLICY_WORDS[policy]}; {_UNITS[policy]}: {free}"
    if failure.memory:
        pages = f" in {fmt_kib_brief(hugepage_kib)} hugepages" if hugepage_kib else ""
        text += f"; memory {fmt_kib_brief(guest.memory_kib)}{pages}: " + "; ".join(
            f"node {n} {why}" for n, why in failure.memory
        )
    if policy is not ThreadPolicy.PREFER and len(failure.memory) < len(failure.units):  # cores, not memory
        text += " (--thread-policy prefer may fit by sharing cores)"
    return text
