"""Verify the scheduler of QEMU's non-vCPU threads and of KVM's PIT thread against the guest (pure).

* ``<emulatorsched>``: libvirt sets it on QEMU's main thread (the process itself, tid = pid) when it
  places the emulator (``qemuProcessSetupEmulator``); threads QEMU started before keep SCHED_OTHER, later
  ones inherit it, so only the main thread is judged.
* ``<iothreadsched>``: each ``IO iothread<N>`` thread.
* ``kvm-pit/<qemu pid>``: the kernel thread KVM makes for the in-kernel PIT (a kthread of its own, not a
  task of QEMU's). libvirt never touches it; vmtune's hook raises it to SCHED_FIFO ``PIT_PRIORITY`` as
  KubeVirt does for a realtime guest (``pit_raised``: FIFO vCPUs or realtime intent), else its timer
  ticks wait behind the FIFO vCPU on its CPU.

A row is shown when a realtime policy is expected or seen (a SCHED_OTHER thread that should be just that
is the common case and would only add noise); the PIT row whenever the thread exists.
"""

from __future__ import annotations

from vmtune.core.guest import EmulatorSched, IOThreadSched, VcpuSched
from vmtune.core.tuning.rtthreads import PIT_PRIORITY, RT_SCHEDULERS, pit_raised

__all__ = ["SchedRow", "expected_pit", "sched_rows"]

_OTHER = ("other", 0)
SchedRow = tuple[str, str, str, str, bool]
"""(what, thread, expected, observed, drifted)."""


def _text(policy: tuple[str, int]) -> str:
    return f"{policy[0]}:{policy[1]}" if policy[0] in RT_SCHEDULERS else policy[0]


def _norm(policy: str, priority: int | None) -> tuple[str, int]:
    return (policy, priority or 0) if policy in RT_SCHEDULERS else (policy, 0)


def expected_pit(vcpusched: tuple[VcpuSched, ...], *, wants_realtime: bool = False) -> tuple[str, int] | None:
    """FIFO ``PIT_PRIORITY`` where the hook raises it (``pit_raised``); None (not judged) otherwise."""
    return ("fifo", PIT_PRIORITY) if pit_raised(vcpusched, wants_realtime=wants_realtime) else None


def _row(what: str, thread: str, want: tuple[str, int], seen: tuple[str, int]) -> SchedRow | None:
    if want == _OTHER and seen[0] not in RT_SCHEDULERS:
        return None
    return (what, thread, f"sched {_text(want)}", f"sched {_text(seen)}", want != seen)


def sched_rows(
    *,
    main: tuple[str, str, int] | None,
    iothreads: list[tuple[int, str, str, int]],
    pit: tuple[str, str, int] | None,
    emulatorsched: EmulatorSched | None,
    iothreadsched: tuple[IOThreadSched, ...],
    vcpusched: tuple[VcpuSched, ...],
    wants_realtime: bool = False,
) -> list[SchedRow]:
    """Rows for the main thread (thread label, policy, priority), each iothread (id, label, policy,
    priority) and the PIT thread, against the domain's schedulers."""
    rows: list[SchedRow | None] = []
    if main is not None:
        want = _OTHER if emulatorsched is None else _norm(emulatorsched.scheduler, emulatorsched.priority)
        rows.append(_row("emulator", main[0], want, _norm(main[1], main[2])))
    for index, label, policy, priority in iothreads:
        entry = next((s for s in iothreadsched if index in s.iothreads), None)
        want = _OTHER if entry is None else _norm(entry.scheduler, entry.priority)
        rows.append(_row(f"iothread {index}", label, want, _norm(policy, priority)))
    if pit is not None:
        expected = expected_pit(vcpusched, wants_realtime=wants_realtime)
        seen = _norm(pit[1], pit[2])
        rows.append(
            (
                "pit",
                pit[0],
                "any" if expected is None else f"sched {_text(expected)}",
                f"sched {_text(seen)}",
                expected is not None and expected != seen,
            )
        )
    return [r for r in rows if r is not None]
