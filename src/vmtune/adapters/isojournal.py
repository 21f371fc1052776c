"""The isolation journal (``<state>/isolation.json``): who holds the host files, and what they held before.

Written atomically (temp file, fsync, rename) before any kernel file changes, so a killed run leaves a
journal that says how to finish or undo it. Read back only when neither the state dir nor the file could
have been written by another user, and every entry is checked (``vmtune.adapters.hostfiles``): the hook
runs as root and a journal entry becomes a root write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmtune.adapters.hookenv import HookPaths, check_private
from vmtune.adapters.hostfiles import check_value, recognise
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

if TYPE_CHECKING:
    from vmtune.core.guest import GuestSpec

__all__ = [
    "JOURNAL",
    "Holder",
    "Journal",
    "check_state_dir",
    "holder_of",
    "journal_exists",
    "load_journal",
    "save_journal",
]

JOURNAL = "isolation.json"


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


def _journal_path(paths: HookPaths) -> Path:
    return paths.state_dir / JOURNAL


def journal_exists(paths: HookPaths) -> bool:
    return _journal_path(paths).is_file()


def check_state_dir(paths: HookPaths) -> None:
    """InputError when the state dir (or the journal in it) could have been written by another user."""
    check_private(paths.state_dir, folder=True)
    check_private(_journal_path(paths), folder=False)


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
