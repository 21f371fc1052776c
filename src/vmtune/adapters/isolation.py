"""Host isolation while isolating guests run: a desired-state reconcile over a journal in the state dir.

``<state>/isolation.json`` holds the *holders* (the running or starting guests that asked for
``--isolate-host`` or ``--power-idle``, with their CPUs), the *saved* original text of every kernel file the
hook changed, the cores a stopped ``--power-idle`` guest left idle, and the realtime threads it raised. Each
hook run computes what every file should hold from the live holders (a holder whose guest has neither a
libvirt status file nor a claim any more is dropped) and converges:

* housekeeping = online CPUs less the CPUs of every isolating holder (the union of their needs);
* each host group's ``cpuset.cpus`` (and its v1 children), every movable IRQ, the unbound-workqueue cpumask
  and ``default_smp_affinity`` are confined to it (a passthrough device's MSI vectors to the housekeeping
  CPUs of the device's node); with no isolating holder left, every saved file gets its original bytes back;
* the journal, with the original of every file about to change, is written (fsync) before the first write,
  so a run killed between two writes is finished by the next one (or ``vmtune hook recover``).

A journal or state dir that another user could have written is refused before anything is applied: the
hook runs as root and a journal entry becomes a root write. Entries are checked, never trusted
(``vmtune.adapters.hostfiles.recognise`` / ``check_value``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from vmtune.adapters.hookenv import HookPaths, live_names
from vmtune.adapters.hostfiles import Kind, read_value, write_value
from vmtune.adapters.isojournal import (
    Holder,
    Journal,
    holder_of,
    journal_exists,
    load_journal,
    save_journal,
)
from vmtune.adapters.isoplan import Step, plan_steps, same
from vmtune.cpuset import CpuSet

__all__ = [
    "Holder",
    "Journal",
    "Kind",
    "Outcome",
    "Writer",
    "holder_of",
    "journal_exists",
    "load_journal",
    "reconcile",
    "save_journal",
]

Writer = Callable[[str, Kind, str], "str | None"]
"""(key, kind, value) -> None when written, else why not. Tests pass one that stops midway."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    written: tuple[Step, ...] = ()
    warnings: tuple[str, ...] = ()
    holders: tuple[str, ...] = ()


def reconcile(
    paths: HookPaths,
    *,
    add: tuple[str, Holder] | None = None,
    remove: str | None = None,
    busy: CpuSet = CpuSet(),  # noqa: B008 - CpuSet is immutable
    write: Writer = write_value,
) -> Outcome:
    """Bring the host files to what the live holders need (call under the hook lock).

    ``add``: a guest being started; ``remove``: a guest that stopped. Holders whose guest neither runs nor
    is starting are dropped. Their ``--power-idle`` cores (not CPU 0, not a core another guest pins) join
    the idle set.
    """
    journal = load_journal(paths)
    live = live_names(paths)
    holders = {n: h for n, h in journal.holders.items() if n in live and n != remove}
    if add is not None:
        holders[add[0]] = add[1]
    idle = {c: m for c, m in journal.idle.items() if c not in busy}
    for name, gone in journal.holders.items():
        if name not in holders and gone.power:
            for cpu in gone.cpus - busy - CpuSet([0]):
                idle[cpu] = gone.power
    threads = {n: t for n, t in journal.threads.items() if n in live and n != remove}
    journal = Journal(holders=holders, saved=journal.saved, idle=idle, threads=threads)
    steps, warnings = plan_steps(paths, journal, busy)
    saved = dict(journal.saved)
    for step in steps:
        if not step.restore and step.key not in saved:
            text = read_value(step.key, step.kind)
            if text is not None:
                saved[step.key] = text
    save_journal(paths, Journal(holders=holders, saved=saved, idle=idle, threads=threads))  # before any write
    written, more = _apply(steps, saved, write)
    save_journal(paths, Journal(holders=holders, saved=saved, idle=idle, threads=threads))
    return Outcome(written=written, warnings=(*warnings, *more), holders=tuple(sorted(holders)))


def _apply(steps: Iterable[Step], saved: dict[str, str], write: Writer) -> tuple[tuple[Step, ...], list[str]]:
    """Write ``steps``; drop restored entries (and ones never changed) from ``saved``."""
    warnings: list[str] = []
    written: list[Step] = []
    fixed: list[str] = []
    ordered = list(steps)
    cgroups = [s for s in ordered if s.kind is Kind.CGROUP]
    # v1: a child must stay inside its parent at every moment, so widen parents-first to the union of now
    # and then, and only then shrink to the target deepest-first
    for step in sorted(cgroups, key=lambda s: (s.depth, s.key)):
        now = read_value(step.key, step.kind)
        if now is None:
            continue
        union = CpuSet.parse(now.strip()) | CpuSet.parse(step.value.strip())
        if not same(step.kind, now, str(union)) and now.strip():
            write(step.key, step.kind, f"{union}\n")
    shrink = sorted(cgroups, key=lambda s: (-s.depth, s.key))
    rest = [s for s in ordered if s.kind is not Kind.CGROUP]
    before = [
        s
        for s in rest
        if (s.kind is Kind.ONLINE and s.value.strip() == "1") or s.kind in (Kind.GOVERNOR, Kind.UNIT)
    ]
    after = [s for s in rest if s not in before]
    for step in (*before, *shrink, *after):
        now = read_value(step.key, step.kind)
        if now is None:  # gone (a v1 service group that ended): nothing left to change or undo
            saved.pop(step.key, None)
            continue
        done = now == step.value or (not step.restore and same(step.kind, now, step.value))
        failed = None if done else write(step.key, step.kind, step.value)
        if failed is None:
            if not done:
                written.append(step)
            if step.restore:
                saved.pop(step.key, None)
            continue
        if step.kind is Kind.IRQ and not step.restore:
            fixed.append(Path(step.key).parent.name)
        else:
            warnings.append(f"{step.key}: cannot write {step.value.strip()!r}: {failed}")
        if read_value(step.key, step.kind) == saved.get(step.key):
            # never changed (an IRQ the kernel manages answers EIO): nothing to undo later
            saved.pop(step.key, None)
    if fixed:
        warnings.append(
            f"IRQ {','.join(sorted(fixed, key=int))}: the kernel keeps its affinity (managed IRQ)"
        )
    return tuple(written), warnings
