"""Small helpers the rule modules share: fix-hint commands, XPath builders, CPU list wording."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from vmtune.core.audit.engine import Hit
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Settings, intent_args, with_settings
from vmtune.cpuset import CpuSet

__all__ = ["apply_cmd", "emulator_off", "names", "vcpupin_xpath", "vcpus_text"]


def apply_cmd(guest: GuestSpec, flags: str = "", *, settings: Settings = ()) -> str:
    """The vmtune command that re-plans this guest (what ``check --fix`` runs): ``settings`` over the
    guest's stored intent, spelled out as flags (flags replace a stored intent), then ``flags`` (what
    only the operator can fill in, like ``--domains DIR``)."""
    knobs = " ".join(intent_args(with_settings(guest.intent, settings))) if settings else ""
    extra = "".join(f" {part}" for part in (knobs, flags) if part)
    if guest.source.startswith("libvirt:"):
        return f"vmtune apply --connect URI --domain {guest.name}{extra}"
    return f"vmtune apply {guest.source}{extra} --in-place"


def emulator_off(
    g: GuestSpec,
    cpus: CpuSet,
    *,
    fix: str,
    settings: Settings,
    unpinned: str,
    overlap: Callable[[CpuSet], str],
) -> Iterator[Hit]:
    """The emulator thread must be pinned off ``cpus``: a hit when it has no ``<emulatorpin>`` (message
    ``unpinned``) or when its pin shares CPUs with ``cpus`` (``overlap(shared CPUs)``)."""
    if g.emulatorpin is None:
        yield Hit(guest=g, location="/domain/cputune", message=unpinned, fix=fix, settings=settings)
    elif not g.emulatorpin.isdisjoint(cpus):
        yield Hit(
            guest=g,
            location="/domain/cputune/emulatorpin",
            message=overlap(g.emulatorpin & cpus),
            fix=fix,
            settings=settings,
        )


def vcpupin_xpath(vcpu: int) -> str:
    return f"/domain/cputune/vcpupin[@vcpu='{vcpu}']"


def vcpus_text(vcpus: Iterable[int]) -> str:
    ids = CpuSet(vcpus)
    return f"vCPU {ids}" if len(ids) == 1 else f"vCPUs {ids}"


def names(guests: Iterable[GuestSpec], limit: int = 3) -> str:
    """``a, b, c (+4 more)``: other tenants named in a one-line message."""
    uniq = sorted({g.name for g in guests})
    shown = ", ".join(uniq[:limit])
    return shown if len(uniq) <= limit else f"{shown} (+{len(uniq) - limit} more)"
