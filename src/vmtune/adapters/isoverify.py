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
from vmtune.adapters.rtthreads import PIT_PRIORITY, observe_thread
from vmtune.core.guest import GuestSpec
from vmtune.core.verify.compare import Drift, Row, Status
from vmtune.cpuset import CpuSet

__all__ = ["HostIsolation", "host_isolation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostIsolation:
    rows: tuple[Row, ...] = ()
    """The host files, for every isolating guest's report."""
    drifts: tuple[Drift, ...] = ()
    threads: dict[str, tuple[Row, Drift | None]] | None = None
    """Guest -> its realtime kernel thread's row (and drift)."""
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
    """Rows for the host files and the raised threads of ``guests`` (the running ones); none when this user
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
    threads: dict[str, tuple[Row, Drift | None]] = {}
    for name, record in journal.threads.items():
        seen_thread = observe_thread(paths, dict(record))
        want = f"fifo:{PIT_PRIORITY} on {record.get('cpus') or '-'}"
        got = "gone" if seen_thread is None else (
            f"{seen_thread['policy']}:{seen_thread['priority']} on {seen_thread['cpus']}"
        )  # fmt: skip
        bad = (
            seen_thread is None
            or seen_thread["policy"] != "fifo"
            or seen_thread["priority"] != str(PIT_PRIORITY)
        )
        bad = bad or (
            bool(record.get("cpus")) and seen_thread is not None and seen_thread["cpus"] != record["cpus"]
        )
        row = Row(what="kvm-pit", thread=f"{record.get('comm')} ({record.get('tid')})", expected=want,
                  observed=got, status=Status.DRIFT if bad else Status.OK)  # fmt: skip
        threads[name] = (
            row,
            Drift(what="kvm-pit", message=f"kvm-pit: {want} wanted, {got}") if bad else None,
        )
    return HostIsolation(rows=tuple(rows), drifts=tuple(drifts), threads=threads, leftover=leftover)


def _kind(key: str, paths: HookPaths) -> Kind:
    from vmtune.adapters.hostfiles import recognise

    return recognise(key, paths)
