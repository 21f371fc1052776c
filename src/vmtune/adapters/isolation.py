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

import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmtune.adapters.hookenv import CLAIM_TTL, HookPaths
from vmtune.adapters.hostfiles import (
    Kind,
    check_value,
    cpu_file,
    device_irqs,
    device_node_cpus,
    host_groups,
    irq_files,
    mask_files,
    mask_text,
    online_cpus,
    read_value,
    recognise,
    v1_children,
    write_value,
)
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

if TYPE_CHECKING:
    from vmtune.core.guest import GuestSpec

__all__ = [
    "JOURNAL",
    "Holder",
    "Journal",
    "Outcome",
    "Step",
    "Writer",
    "check_state_dir",
    "holder_of",
    "journal_exists",
    "live_names",
    "load_journal",
    "plan_steps",
    "reconcile",
    "save_journal",
]

JOURNAL = "isolation.json"
Writer = Callable[[str, Kind, str], "str | None"]
"""(key, kind, value) -> None when written, else why not. Tests pass one that stops midway."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Holder:
    """A running or starting guest whose wishes the host files follow."""

    cpus: CpuSet
    """Its vCPUs' CPUs (the cores it holds)."""
    isolate: bool = False
    power: str = ""
    """``--power-idle`` as written (``governor:NAME``, ``offline``), empty when not asked for."""
    devices: tuple[str, ...] = ()
    """PCI addresses of its passthrough devices."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Journal:
    holders: Mapping[str, Holder] = field(default_factory=dict)
    saved: Mapping[str, str] = field(default_factory=dict)
    """Journal key (a file path, or ``systemd:UNIT``) -> the text it had before the hook changed it."""
    idle: Mapping[int, str] = field(default_factory=dict)
    """CPU -> the ``--power-idle`` its last guest asked for, while no guest holds it."""
    threads: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Guest -> the realtime kernel thread the hook raised (``tid``, ``comm``, ``policy``, ``priority``,
    ``cpus``): it dies with QEMU, so nothing to undo, but verify reports it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    key: str
    kind: Kind
    value: str
    """The text to write."""
    depth: int = 0
    """Below the host group, for v1 cpuset children (written deepest first when shrinking)."""
    restore: bool = False
    """``value`` is the saved original: once written the entry leaves the journal."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    written: tuple[Step, ...] = ()
    warnings: tuple[str, ...] = ()
    holders: tuple[str, ...] = ()


def _journal_path(paths: HookPaths) -> Path:
    return paths.state_dir / JOURNAL


def journal_exists(paths: HookPaths) -> bool:
    return _journal_path(paths).is_file()


def _others_can_write(st: os.stat_result) -> bool:
    return st.st_uid != os.geteuid() or bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def check_state_dir(paths: HookPaths) -> None:
    """InputError when the state dir (or the journal in it) could have been written by another user."""
    for path, want_dir in ((paths.state_dir, True), (_journal_path(paths), False)):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
        if not kind_ok or _others_can_write(st):
            raise InputError(
                f"{path}: owned by uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):o}, or not a plain "
                f"{'folder' if want_dir else 'file'}; refusing to act on a journal another user could write"
            )


def load_journal(paths: HookPaths) -> Journal:
    """The journal, every entry checked; InputError (nothing applied) when it cannot be trusted."""
    check_state_dir(paths)
    path = _journal_path(paths)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Journal()
    except (OSError, ValueError) as err:
        raise InputError(
            f"{path}: unreadable journal ({err}); fix or remove it, then `vmtune hook recover`"
        ) from None
    try:
        holders = {
            str(name): Holder(
                cpus=CpuSet.parse(str(h["cpus"])),
                isolate=bool(h["isolate"]),
                power=_power(h["power"]),
                devices=tuple(str(d) for d in h["devices"]),
            )
            for name, h in body.get("holders", {}).items()
        }
        saved = {
            str(k): check_value(recognise(str(k), paths), str(v), str(k))
            for k, v in body.get("saved", {}).items()
        }
        idle = {int(c): _power(m) for c, m in body.get("idle", {}).items()}
        threads = {
            str(n): {k: (int(v) if k == "tid" else str(v)) for k, v in t.items()}
            for n, t in body.get("threads", {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{path}: malformed journal entry ({err}); refusing to act on it") from None
    if any(c <= 0 for c in idle):
        raise InputError(f"{path}: idle CPU 0 or below; refusing to act on it")
    return Journal(holders=holders, saved=saved, idle=idle, threads=threads)


def _power(text: object) -> str:
    from vmtune.core.intent.values import PowerIdle

    clean = str(text)
    if clean:
        PowerIdle.parse(clean)  # ValueError: the caller names the journal
    return clean


def save_journal(paths: HookPaths, journal: Journal) -> None:
    """Atomic and fsynced; an empty journal is removed."""
    from vmtune.adapters.files import atomic_write

    path = _journal_path(paths)
    if not (journal.holders or journal.saved or journal.idle or journal.threads):
        path.unlink(missing_ok=True)
        return
    holders = {
        n: {"cpus": str(h.cpus), "isolate": h.isolate, "power": h.power, "devices": list(h.devices)}
        for n, h in sorted(journal.holders.items())
    }
    body = {
        "holders": holders,
        "saved": dict(sorted(journal.saved.items())),
        "idle": {str(c): m for c, m in sorted(journal.idle.items())},
        "threads": {n: dict(t) for n, t in sorted(journal.threads.items())},
    }
    paths.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(body, indent=1) + "\n").encode(), mode=0o600)


def live_names(paths: HookPaths, *, now: float | None = None) -> frozenset[str]:
    """Guests libvirt runs (status files) or the hook let through and that are still starting (claims)."""
    now = time.time() if now is None else now
    names = {p.stem for p in paths.status_dir.glob("*.xml")} if paths.status_dir.is_dir() else set()
    for claim in paths.claims.glob("*.xml") if paths.claims.is_dir() else ():
        try:
            if now - claim.stat().st_mtime <= CLAIM_TTL:
                names.add(claim.stem)
        except OSError:
            continue
    return frozenset(names)


def holder_of(guest: GuestSpec) -> Holder | None:
    """What ``guest``'s stored intent asks of the host files; None when nothing (or it pins no CPU)."""
    from vmtune.core.intent.model import KNOBS
    from vmtune.core.intent.profiles import active_profiles

    intent = guest.intent
    if intent is None or not guest.vcpu_cpus:
        return None
    knob = next(k for k in KNOBS if k.name == "isolate_host")
    isolate = bool(knob.resolve(intent.isolate_host, active_profiles(intent)))
    power = str(intent.power_idle) if intent.power_idle is not None else ""
    if not isolate and not power:
        return None
    return Holder(cpus=guest.vcpu_cpus, isolate=isolate, power=power, devices=guest.hostdev_pci)


def _same(kind: Kind, a: str | None, b: str | None) -> bool:
    """Equal as the kernel reads them (``0-1`` and ``0,1`` are one cpuset; masks by their bits)."""
    if a is None or b is None:
        return a is b
    try:
        if kind in (Kind.CGROUP, Kind.UNIT, Kind.IRQ):
            return CpuSet.parse(a.strip()) == CpuSet.parse(b.strip())
        if kind is Kind.MASK:
            return CpuSet.parse_mask(a) == CpuSet.parse_mask(b)
    except InputError:
        return False
    return a.strip() == b.strip()


def _confine(text: str, keep: CpuSet) -> CpuSet:
    """What a list keeps of ``keep``; all of ``keep`` when it had none of it (or was empty: v2 inherit)."""
    return (CpuSet.parse(text.strip()) & keep) or keep


def plan_steps(paths: HookPaths, journal: Journal, busy: CpuSet) -> tuple[tuple[Step, ...], tuple[str, ...]]:
    """Every write that brings the host files to what ``journal.holders`` need, in a safe order.

    ``busy``: the CPUs every live guest pins (an idle core taken by any guest comes back first).
    """
    warnings: list[str] = []
    targets: dict[str, tuple[Kind, str, int]] = {}

    def original(key: str, kind: Kind) -> str | None:
        return journal.saved[key] if key in journal.saved else read_value(key, kind)

    isolated = CpuSet().union(*(h.cpus for h in journal.holders.values() if h.isolate))
    housekeeping = online_cpus(paths) - isolated
    if isolated and not housekeeping:
        warnings.append(f"isolating guests hold every online CPU ({isolated}); host left unconfined")
    elif isolated:
        warnings += _group_targets(paths, housekeeping, original, targets)
        _irq_targets(paths, journal, housekeeping, original, targets)
        for path in mask_files(paths):
            text = original(str(path), Kind.MASK)
            if text is not None:
                want = (CpuSet.parse_mask(text) & housekeeping) or housekeeping
                targets[str(path)] = (Kind.MASK, mask_text(want, text), 0)
    _power_targets(paths, journal, busy, targets)

    steps: list[Step] = []
    for key, (kind, value, depth) in targets.items():
        text = original(key, kind)
        if text is None:
            continue
        if _same(kind, value, text):
            if key in journal.saved:
                steps.append(Step(key=key, kind=kind, value=text, depth=depth, restore=True))
            continue
        steps.append(Step(key=key, kind=kind, value=value, depth=depth))
    for key, text in journal.saved.items():
        if key not in targets:
            steps.append(
                Step(key=key, kind=recognise(key, paths), value=text, depth=_depth(key, paths), restore=True)
            )
    return tuple(sorted(steps, key=_order)), tuple(warnings)


def _depth(key: str, paths: HookPaths) -> int:
    return (
        len(Path(key).relative_to(paths.cgroup_root).parts) if key.startswith(str(paths.cgroup_root)) else 0
    )


def _order(step: Step) -> tuple[int, int, str]:
    """Bring cores online first and take them offline last; cgroups parents first (``reconcile`` shrinks
    them deepest first in a second pass)."""
    phase = {
        Kind.ONLINE: 0 if step.value.strip() == "1" else 9,
        Kind.GOVERNOR: 1,
        Kind.CGROUP: 2,
        Kind.UNIT: 2,
    }
    return phase.get(step.kind, 5), step.depth, step.key


def _group_targets(
    paths: HookPaths, keep: CpuSet, original: Callable[[str, Kind], str | None],
    targets: dict[str, tuple[Kind, str, int]],
) -> list[str]:  # fmt: skip
    groups, warnings = host_groups(paths)
    for group in groups:
        kind = Kind.UNIT if group.unit else Kind.CGROUP
        text = original(group.key, kind)
        if text is None:
            continue
        top = _confine(text, keep)
        base = _depth(group.key, paths) if kind is Kind.CGROUP else 0
        targets[group.key] = (kind, f"{top}\n", base)
        if not group.v1:
            continue
        inside = {group.folder: top}
        for child, depth in v1_children(group.folder):
            parent_cpus = inside.get(child.parent, top)
            key = str(child / "cpuset.cpus")
            child_text = original(key, Kind.CGROUP)
            if child_text is None or not child_text.strip():
                inside[child] = parent_cpus  # a v1 group without CPUs holds no task; left as it is
                continue
            inside[child] = _confine(child_text, parent_cpus)
            targets[key] = (Kind.CGROUP, f"{inside[child]}\n", base + depth)
    return list(warnings)


def _irq_targets(
    paths: HookPaths, journal: Journal, keep: CpuSet, original: Callable[[str, Kind], str | None],
    targets: dict[str, tuple[Kind, str, int]],
) -> None:  # fmt: skip
    device: dict[int, CpuSet] = {}
    for holder in journal.holders.values():
        if not holder.isolate:
            continue
        for bdf in holder.devices:
            node = device_node_cpus(paths, bdf)
            near = (node & keep) if node is not None else CpuSet()
            for irq in device_irqs(paths, bdf):
                device[irq] = near or keep
    for irq, path in irq_files(paths):
        text = original(str(path), Kind.IRQ)
        if text is None:
            continue
        want = device.get(irq) or _confine(text, keep)
        targets[str(path)] = (Kind.IRQ, f"{want}\n", 0)


def _power_targets(
    paths: HookPaths, journal: Journal, busy: CpuSet, targets: dict[str, tuple[Kind, str, int]]
) -> None:
    """``performance`` on the cores of running ``--power-idle`` guests; the idle ones as asked."""
    running = CpuSet().union(*(h.cpus for h in journal.holders.values() if h.power)) - CpuSet([0])
    for cpu in running:
        governor = cpu_file(paths, cpu, Kind.GOVERNOR)
        if governor.is_file():
            targets[str(governor)] = (Kind.GOVERNOR, "performance\n", 0)
    for cpu, mode in journal.idle.items():
        if cpu in busy or cpu in running or cpu == 0:
            continue
        if mode == "offline":
            online = cpu_file(paths, cpu, Kind.ONLINE)
            if online.is_file():
                targets[str(online)] = (Kind.ONLINE, "0\n", 0)
        else:
            governor = cpu_file(paths, cpu, Kind.GOVERNOR)
            if governor.is_file():
                targets[str(governor)] = (Kind.GOVERNOR, mode.removeprefix("governor:") + "\n", 0)


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
    ordered = list(steps)
    cgroups = [s for s in ordered if s.kind is Kind.CGROUP]
    # v1: a child must stay inside its parent at every moment, so widen parents-first to the union of now
    # and then, and only then shrink to the target deepest-first
    for step in sorted(cgroups, key=lambda s: (s.depth, s.key)):
        now = read_value(step.key, step.kind)
        if now is None:
            continue
        union = CpuSet.parse(now.strip()) | CpuSet.parse(step.value.strip())
        if not _same(step.kind, now, str(union)) and now.strip():
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
        done = now == step.value or (not step.restore and _same(step.kind, now, step.value))
        failed = None if done else write(step.key, step.kind, step.value)
        if failed is None:
            if not done:
                written.append(step)
            if step.restore:
                saved.pop(step.key, None)
            continue
        warnings.append(f"{step.key}: cannot write {step.value.strip()!r}: {failed}")
        if read_value(step.key, step.kind) == saved.get(step.key):
            # never changed (an IRQ the kernel manages answers EIO): nothing to undo later
            saved.pop(step.key, None)
    return tuple(written), warnings
