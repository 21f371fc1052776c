"""``vmtune verify``'s host-isolation rows: each confined file against what the running guests' intent asks,
and the realtime kernel thread the hook raised, read back from the kernel.

Expected values are the hook's own targets (``vmtune.adapters.isoplan.targets``) for the holders the running
guests' stored intent makes, over the originals the journal saved: the same computation the hook converges
to, so a file that holds anything else has drifted (a host tool rewrote it, or a hook run died and nothing
has run since). An IRQ the hook never moved (the kernel manages its affinity, or it appeared later) is shown
but is not drift.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vmtune.adapters.hookenv import HookPaths
from vmtune.adapters.hostfiles import Kind, read_value
from vmtune.adapters.isojournal import Journal, holder_of, load_journal
from vmtune.adapters.isoplan import same, targets
from vmtune.core.guest import GuestSpec
from vmtune.core.verify.compare import Drift, Row, Status
from vmtune.cpuset import CpuSet

__all__ = ["HostIsolation", "host_isolation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostIsolation:
    rows: tuple[Row, ...] = ()
    """The host files, for every isolating guest's report."""
    drifts: tuple[Drift, ...] = ()
    leftover: int = 0
    """Files still changed although no running guest asks for isolation."""


def _what(key: str, kind: Kind, paths: HookPaths) -> str:
    if kind is Kind.CGROUP:
        return f"host group {Path(key).parent.relative_to(paths.cgroup_root)}"
    if kind is Kind.UNIT:
        return f"host unit {key.split(':', 1)[1]}"
    if kind is Kind.IRQ:
        return f"irq {Path(key).parent.name}"
    if kind is Kind.MASK:
        return "workqueue cpumask" if "workqueue" in key else "irq default"
    return f"{Path(key).parent.name if kind is Kind.ONLINE else Path(key).parent.parent.name} {kind.value}"


def host_isolation(paths: HookPaths, guests: Sequence[GuestSpec]) -> HostIsolation:
    """Rows for the host files the isolating ``guests`` (the running ones) ask for; none when this user
    cannot read the hook's state (it is root's, mode 0700)."""
    if paths.state_dir.is_dir() and not os.access(paths.state_dir, os.R_OK | os.X_OK):
        return HostIsolation()
    journal = load_journal(paths)
    holders = {g.name: h for g in guests if (h := holder_of(g)) is not None}
    expected = Journal(holders=holders, saved=journal.saved, idle=journal.idle, threads=journal.threads)
    wanted, _ = targets(paths, expected, CpuSet().union(*(g.vcpu_cpus for g in guests)))
    rows: list[Row] = []
    drifts: list[Drift] = []
    for key, (kind, value, _depth) in sorted(wanted.items()):
        seen = read_value(key, kind)
        if seen is None:
            continue
        moved = key in journal.saved
        ok = same(kind, seen, value)
        if kind is Kind.IRQ and not moved and not ok:
            status = Status.IGNORED  # the kernel manages it, or it came after the guest started
        elif kind is Kind.IRQ and not moved:
            continue
        else:
            status = Status.OK if ok else Status.DRIFT
        what = _what(key, kind, paths)
        rows.append(Row(what=what, thread="-", expected=value.strip(), observed=seen.strip(), status=status))
        if status is Status.DRIFT:
            drifts.append(Drift(what="isolation", message=f"{what}: {key} holds {seen.strip()!r}, "
                                                   f"isolation wants {value.strip()!r}"))  # fmt: skip
    leftover = 0
    if not any(h.isolate or h.power for h in holders.values()):
        leftover = sum(
            1
            for key, text in journal.saved.items()
            if key not in wanted and read_value(key, _kind(key, paths)) != text
        )
    return HostIsolation(rows=tuple(rows), drifts=tuple(drifts), leftover=leftover)


def _kind(key: str, paths: HookPaths) -> Kind:
    from vmtune.adapters.hostfiles import recognise

    return recognise(key, paths)
