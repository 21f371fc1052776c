"""Verify: what a running guest's threads and memory really do, side by side with what it was told.

Pure. ``vmtune.adapters.procfs`` reads ``/proc/<qemu pid>/task/*`` and ``numa_maps`` into an
:class:`Observed`; the expectation comes from the guest's XML (a :class:`GuestSpec`, which after
``apply --connect`` is the plan read back) or straight from a :class:`Plan`. :func:`compare` lines them
up and names every drift: a vCPU whose ``Cpus_allowed_list`` is not its ``<vcpupin>``, an emulator
thread outside ``<emulatorpin>``, a realtime vCPU that runs SCHED_OTHER, guest memory on nodes
``<numatune>`` excludes.

Thread names are QEMU's (``qemu_thread_create`` names, set with ``pthread_setname_np``, 15 chars):
``CPU <n>/KVM`` (or ``/TCG`` under TCG) for vCPU n, ``IO <id>`` for iothread objects (libvirt names
them ``iothread<N>``); everything else in the process is an emulator thread, except the
``kvm-nx-lpage-re`` *kernel* worker KVM attaches to the VM's process since Linux 6.x: libvirt does not
place it, so its affinity is not checked. KVM's ``kvm-pit/<pid>`` is a kernel thread of its own (outside
the process), read separately; its scheduler is judged with the others' in ``core.verify.sched``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from vmtune.core.guest import EmulatorSched, GuestSpec, IOThreadPin, IOThreadSched, VcpuPin, VcpuSched
from vmtune.core.intent.model import Profile
from vmtune.core.ledger.tenant import as_planned
from vmtune.core.plan import Plan
from vmtune.core.tuning.rtthreads import pit_cpus
from vmtune.core.verify.sched import expected_pit, sched_rows
from vmtune.cpuset import CpuSet

__all__ = [
    "POLICY_NAMES",
    "Drift",
    "Expectation",
    "Observed",
    "ObservedThread",
    "Report",
    "Row",
    "Status",
    "ThreadKind",
    "classify_thread",
    "compare",
    "expectation_from_guest",
    "expectation_from_plan",
]

# sched(7) policy numbers as /proc/<pid>/stat field 41 shows them, named with libvirt's literals
POLICY_NAMES = {0: "other", 1: "fifo", 2: "rr", 3: "batch", 5: "idle", 6: "deadline"}
RT_POLICIES = frozenset({"fifo", "rr"})
# Guest memory is the big mapping; a few MiB of QEMU's own allocations may sit elsewhere before the
# cpuset.mems of the emulator cgroup is set, so a tiny remainder is not drift.
MEMORY_SLACK = 0.02

_VCPU_RE = re.compile(r"^CPU (\d+)/(KVM|TCG|HVF|WHPX)$")
_IOTHREAD_RE = re.compile(r"^IO iothread(\d+)$")
_KERNEL_PREFIXES = ("kvm-nx-lpage-re", "kvm-pit/", "kvm-")


class ThreadKind(StrEnum):
    VCPU = "vcpu"
    EMULATOR = "emulator"
    IOTHREAD = "iothread"
    KERNEL = "kernel"


def classify_thread(name: str) -> tuple[ThreadKind, int | None]:
    """(kind, index) of a QEMU thread by its ``comm`` (see the module docstring)."""
    if m := _VCPU_RE.match(name):
        return ThreadKind.VCPU, int(m.group(1))
    if m := _IOTHREAD_RE.match(name):
        return ThreadKind.IOTHREAD, int(m.group(1))
    if name.startswith(_KERNEL_PREFIXES):
        return ThreadKind.KERNEL, None
    return ThreadKind.EMULATOR, None


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedThread:
    tid: int
    name: str
    kind: ThreadKind
    index: int | None
    """vCPU id or iothread id; None for emulator and kernel threads."""
    affinity: CpuSet
    policy: str
    """libvirt scheduler literal (other, fifo, rr, batch, idle, deadline)."""
    priority: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    guest: str
    pid: int
    threads: tuple[ObservedThread, ...]
    memory_kib: tuple[tuple[int, int], ...] = ()
    """(host NUMA node, KiB resident there) from ``numa_maps``."""
    hyperv: tuple[str, ...] | None = None
    """Enlightenments on QEMU's real ``-cpu`` command line (libvirt names); None: not read."""
    pit: ObservedThread | None = None
    """KVM's ``kvm-pit/<pid>`` kernel thread (not one of QEMU's tasks); None when there is none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    guest: str
    vcpus: int
    vcpupins: tuple[VcpuPin, ...] = ()
    vcpu_cpuset: CpuSet | None = None
    emulatorpin: CpuSet | None = None
    iothreadpins: tuple[IOThreadPin, ...] = ()
    vcpusched: tuple[VcpuSched, ...] = ()
    emulatorsched: EmulatorSched | None = None
    iothreadsched: tuple[IOThreadSched, ...] = ()
    numatune_mode: str | None = None
    numatune_nodeset: CpuSet | None = None
    hyperv: tuple[str, ...] | None = None
    """Enlightenments the XML switches on; None when it has no ``<hyperv>``."""
    wants_realtime: bool = False
    """The stored intent asked for realtime (so a missing vcpusched is a host limit worth showing)."""

    def vcpu_cpus(self, vcpu: int) -> CpuSet | None:
        for pin in self.vcpupins:
            if pin.vcpu == vcpu:
                return pin.cpus
        return self.vcpu_cpuset

    def vcpu_policy(self, vcpu: int) -> tuple[str, int]:
        for sched in self.vcpusched:
            if vcpu in sched.vcpus:
                return sched.scheduler, sched.priority or 0
        return "other", 0


def expectation_from_guest(guest: GuestSpec) -> Expectation:
    return Expectation(
        guest=guest.name,
        vcpus=guest.current_vcpus or guest.vcpus,
        vcpupins=guest.vcpupins,
        vcpu_cpuset=guest.vcpu_cpuset,
        emulatorpin=guest.emulatorpin,
        iothreadpins=guest.iothreadpins,
        vcpusched=guest.vcpusched,
        emulatorsched=guest.emulatorsched,
        iothreadsched=guest.iothreadsched,
        numatune_mode=guest.numatune_mode,
        numatune_nodeset=guest.numatune_nodeset,
        hyperv=None
        if guest.hyperv_mode is None
        else tuple(f.name for f in guest.hyperv if f.state)
        if guest.hyperv_mode != "passthrough"
        else ("passthrough",),
        wants_realtime=guest.intent is not None and guest.intent.has(Profile.REALTIME),
    )


def expectation_from_plan(plan: Plan, guest: GuestSpec) -> Expectation:
    """The guest as its plan leaves it (``as_planned``, the batch's own rule), with the plan's Hyper-V set."""
    base = expectation_from_guest(as_planned(guest, plan))
    if plan.features is None or plan.features.hyperv is None:
        return base
    return replace(base, hyperv=tuple(f.name for f in plan.features.hyperv if f.state) or None)


class Status(StrEnum):
    OK = "ok"
    DRIFT = "drift"
    FLOATING = "floating"
    """Nothing pinned this thread, so any affinity is what was asked for."""
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One thread (or the memory) side by side: expected vs. observed."""

    what: str
    """``vcpu 0``, ``emulator``, ``iothread 1``, ``memory``, ``hyperv``..."""
    thread: str
    """Thread name(s) and tid(s), or the node list for memory."""
    expected: str
    observed: str
    status: Status


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    what: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    guest: str
    pid: int
    rows: tuple[Row, ...]
    drifts: tuple[Drift, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.drifts


def _sched(policy: str, priority: int) -> str:
    return f"{policy}:{priority}" if policy in RT_POLICIES else policy


def compare(exp: Expectation, obs: Observed) -> Report:
    """Line up expectation and observation; every mismatch becomes a Drift naming the thread."""
    rows: list[Row] = []
    drifts: list[Drift] = []
    notes: list[str] = []
    vcpu_threads = sorted((t for t in obs.threads if t.kind is ThreadKind.VCPU), key=lambda t: t.index or 0)
    _vcpu_rows(rows, drifts, exp, vcpu_threads)
    if exp.wants_realtime and not any(s.scheduler in RT_POLICIES for s in exp.vcpusched):
        notes.append(
            "intent asks for realtime vCPUs but the domain has no fifo/rr <vcpusched> (left out for this "
            "host, see `vmtune plan --explain`): vCPUs run "
            + ", ".join(sorted({_sched(t.policy, t.priority) for t in vcpu_threads}) or ["-"])
        )
    emulators = [t for t in obs.threads if t.kind is ThreadKind.EMULATOR]
    _group_rows(rows, drifts, "emulator", emulators, exp.emulatorpin)
    for t in sorted((t for t in obs.threads if t.kind is ThreadKind.IOTHREAD), key=lambda t: t.index or 0):
        want = next((p.cpus for p in exp.iothreadpins if p.iothread == t.index), None)
        _group_rows(rows, drifts, f"iothread {t.index}", [t], want)
    rows.extend(
        Row(what="kernel", thread=f"{t.name} ({t.tid})", expected="-", observed=str(t.affinity),
            status=Status.IGNORED)
        for t in obs.threads
        if t.kind is ThreadKind.KERNEL
    )  # fmt: skip
    _sched_rows(rows, drifts, exp, obs)
    _memory_row(rows, drifts, exp, obs)
    _hyperv_row(rows, drifts, exp, obs)
    return Report(guest=exp.guest, pid=obs.pid, rows=tuple(rows), drifts=tuple(drifts), notes=tuple(notes))


def _vcpu_rows(
    rows: list[Row], drifts: list[Drift], exp: Expectation, vcpu_threads: list[ObservedThread]
) -> None:
    """One row per vCPU thread (affinity and scheduler against the plan); a missing vCPU is a drift."""
    seen = {t.index for t in vcpu_threads}
    drifts.extend(
        Drift(what=f"vcpu {vcpu}", message=f"vCPU {vcpu}: no 'CPU {vcpu}/...' thread found")
        for vcpu in range(exp.vcpus)
        if vcpu not in seen
    )
    for t in vcpu_threads:
        vcpu = t.index or 0
        want = exp.vcpu_cpus(vcpu)
        want_policy, want_prio = exp.vcpu_policy(vcpu)
        problems: list[str] = []
        if want is not None and t.affinity != want:
            problems.append(f"runs on CPUs {t.affinity or '-'}, pinned to {want}")
        wanted = (want_policy, want_prio if want_policy in RT_POLICIES else 0)
        if wanted != (t.policy, t.priority if t.policy in RT_POLICIES else 0):
            problems.append(
                f"scheduler {_sched(t.policy, t.priority)}, expected {_sched(want_policy, want_prio)}"
            )
        status = Status.DRIFT if problems else Status.OK if want is not None else Status.FLOATING
        rows.append(
            Row(
                what=f"vcpu {vcpu}",
                thread=f"{t.name} ({t.tid})",
                expected=f"{want if want is not None else 'any'} {_sched(want_policy, want_prio)}",
                observed=f"{t.affinity} {_sched(t.policy, t.priority)}",
                status=status,
            )
        )
        drifts.extend(
            Drift(what=f"vcpu {vcpu}", message=f"vCPU {vcpu} ({t.name}, tid {t.tid}) {p}") for p in problems
        )


def _group_rows(
    rows: list[Row], drifts: list[Drift], what: str, threads: list[ObservedThread], want: CpuSet | None
) -> None:
    """One row per distinct affinity among a group of threads (QEMU has several emulator threads)."""
    by_affinity: dict[CpuSet, list[ObservedThread]] = {}
    for t in threads:
        by_affinity.setdefault(t.affinity, []).append(t)
    for affinity, group in sorted(by_affinity.items(), key=lambda kv: kv[0]):
        names = ", ".join(f"{t.name} ({t.tid})" for t in group)
        bad = want is not None and affinity != want
        status = Status.DRIFT if bad else Status.OK if want is not None else Status.FLOATING
        rows.append(
            Row(
                what=what,
                thread=names,
                expected=str(want) if want is not None else "any",
                observed=str(affinity),
                status=status,
            )
        )
        if bad:
            drifts.append(
                Drift(what=what, message=f"{what} thread(s) {names} run on CPUs {affinity}, pinned to {want}")
            )


def _sched_rows(rows: list[Row], drifts: list[Drift], exp: Expectation, obs: Observed) -> None:
    """The emulator's main thread, the iothreads and KVM's PIT thread against the domain's schedulers."""
    main = next((t for t in obs.threads if t.tid == obs.pid and t.kind is ThreadKind.EMULATOR), None)
    iothreads = sorted((t for t in obs.threads if t.kind is ThreadKind.IOTHREAD), key=lambda t: t.index or 0)
    found = sched_rows(
        main=None if main is None else (f"{main.name} ({main.tid})", main.policy, main.priority),
        iothreads=[(t.index or 0, f"{t.name} ({t.tid})", t.policy, t.priority) for t in iothreads],
        pit=None
        if obs.pit is None
        else (f"{obs.pit.name} ({obs.pit.tid})", obs.pit.policy, obs.pit.priority),
        emulatorsched=exp.emulatorsched,
        iothreadsched=exp.iothreadsched,
        vcpusched=exp.vcpusched,
        wants_realtime=exp.wants_realtime,
    )
    want = pit_cpus(exp.vcpu_cpus(0), exp.vcpu_cpuset)
    if obs.pit is not None and want and expected_pit(exp.vcpusched, wants_realtime=exp.wants_realtime):
        # the hook pins the raised PIT thread as it raises it (``pit_cpus``)
        seen = obs.pit.affinity
        found.append(("pit affinity", f"{obs.pit.name} ({obs.pit.tid})", f"CPUs {want}", f"CPUs {seen}",
                      seen != want))  # fmt: skip
    for what, thread, expected, observed, drifted in found:
        status = Status.DRIFT if drifted else Status.IGNORED if expected == "any" else Status.OK
        rows.append(Row(what=what, thread=thread, expected=expected, observed=observed, status=status))
        if drifted:
            drifts.append(
                Drift(what=what, message=f"{what} thread {thread} runs {observed}, expected {expected}")
            )


def _memory_row(rows: list[Row], drifts: list[Drift], exp: Expectation, obs: Observed) -> None:
    if not obs.memory_kib:
        return
    total = sum(kib for _, kib in obs.memory_kib)
    observed = " ".join(f"N{node}={kib // 1024}MiB" for node, kib in obs.memory_kib)
    nodeset = exp.numatune_nodeset
    outside, bad = 0, False
    if nodeset is None or exp.numatune_mode in (None, "interleave", "preferred"):
        status = Status.FLOATING if nodeset is None else Status.OK
    else:
        outside = sum(kib for node, kib in obs.memory_kib if node not in nodeset)
        bad = total > 0 and outside / total > MEMORY_SLACK
        status = Status.DRIFT if bad else Status.OK
    rows.append(
        Row(what="memory", thread="numa_maps", expected=_numa_text(exp), observed=observed, status=status)
    )
    if bad:
        drifts.append(
            Drift(
                what="memory",
                message=f"{outside // 1024} MiB of {total // 1024} MiB sit outside nodes {nodeset} "
                f"({exp.numatune_mode} binding)",
            )
        )


def _numa_text(exp: Expectation) -> str:
    if exp.numatune_nodeset is None:
        return "any node"
    return f"{exp.numatune_mode or 'strict'} {exp.numatune_nodeset}"


def _hyperv_row(rows: list[Row], drifts: list[Drift], exp: Expectation, obs: Observed) -> None:
    if obs.hyperv is None or (exp.hyperv is None and not obs.hyperv):
        return
    want = set(exp.hyperv or ())
    have = set(obs.hyperv)
    missing = sorted(want - have) if "passthrough" not in have else []
    rows.append(
        Row(
            what="hyperv",
            thread="-cpu",
            expected=",".join(sorted(want)) or "none",
            observed=",".join(sorted(have)) or "none",
            status=Status.DRIFT if missing else Status.OK,
        )
    )
    if missing:
        drifts.append(Drift(what="hyperv", message=f"QEMU runs without enlightenments {', '.join(missing)}"))
