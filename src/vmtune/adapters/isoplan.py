"""What the host files should hold for the live holders (``--isolate-host``, ``--power-idle``), as writes.

Housekeeping = online CPUs less every isolating holder's CPUs (the union of their needs). Each host group's
``cpuset.cpus`` keeps what it had of them (all of them when it had none, or inherited: v2's empty list), and
a v1 group's children keep what they had of their parent's new list; every IRQ likewise, except a
passthrough device's MSI vectors, which go to the housekeeping CPUs of the device's node; the unbound
workqueues and ``default_smp_affinity`` (IRQs yet to come) too. With no isolating holder, every saved file
gets its original text back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vmtune.adapters.hookenv import HookPaths
from vmtune.adapters.hostfiles import (
    Kind,
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
)
from vmtune.adapters.isojournal import Journal
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["Step", "Targets", "plan_steps", "same", "targets"]

Targets = dict[str, tuple[Kind, str, int]]
"""Journal key -> (kind, the text it should hold, depth below its host group)."""


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


def same(kind: Kind, a: str | None, b: str | None) -> bool:
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


def targets(paths: HookPaths, journal: Journal, busy: CpuSet) -> tuple[Targets, tuple[str, ...]]:
    """What every file the holders care about should hold (and one warning per thing left alone).

    ``busy``: the CPUs every live guest pins (an idle core taken by any guest comes back first).
    """
    warnings: list[str] = []
    wanted: Targets = {}

    def original(key: str, kind: Kind) -> str | None:
        return journal.saved[key] if key in journal.saved else read_value(key, kind)

    isolated = CpuSet().union(*(h.cpus for h in journal.holders.values() if h.isolate))
    housekeeping = online_cpus(paths) - isolated
    if isolated and not housekeeping:
        warnings.append(f"isolating guests hold every online CPU ({isolated}); host left unconfined")
    elif isolated:
        warnings += _group_targets(paths, housekeeping, original, wanted)
        _irq_targets(paths, journal, housekeeping, original, wanted)
        for path in mask_files(paths):
            text = original(str(path), Kind.MASK)
            if text is not None:
                want = (CpuSet.parse_mask(text) & housekeeping) or housekeeping
                wanted[str(path)] = (Kind.MASK, mask_text(want, text), 0)
    _power_targets(paths, journal, busy, wanted)
    return wanted, tuple(warnings)


def plan_steps(paths: HookPaths, journal: Journal, busy: CpuSet) -> tuple[tuple[Step, ...], tuple[str, ...]]:
    """Every write that brings the host files to ``targets``, in a safe order (see ``_order``)."""
    wanted, warnings = targets(paths, journal, busy)

    def original(key: str, kind: Kind) -> str | None:
        return journal.saved[key] if key in journal.saved else read_value(key, kind)

    steps: list[Step] = []
    for key, (kind, value, depth) in wanted.items():
        text = original(key, kind)
        if text is None:
            continue
        if same(kind, value, text):
            if key in journal.saved:
                steps.append(Step(key=key, kind=kind, value=text, depth=depth, restore=True))
            continue
        steps.append(Step(key=key, kind=kind, value=value, depth=depth))
    for key, text in journal.saved.items():
        if key not in wanted:
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
