"""Who owns which host CPU: tenants (other domains), reserved housekeeping CPUs, isolcpus, offline CPUs.

Pure: the CLI gathers the tenants (``--domains DIR`` or a libvirt connection) and the host; this module only
decides the owner of each CPU and finds the conflicts ``vmtune host --map`` highlights (and ``check``'s
VT103/VT104 are built on): a CPU pinned by two domains, a core whose SMT siblings are split between domains.

The map must show what the planner will do, so the rules are the planner ledger's own (``reservation`` and
``held_cpus``): the CPUs shown ``free`` or ``isolated`` are exactly the ledger's free pool for a new guest.

Precedence for one CPU, first match wins:

1. ``offline``: an offline CPU runs nothing, whatever a stale XML pins to it (VT108 reports that);
2. the tenant(s) holding it: vcpupin, emulatorpin, iothreadpin and ``vcpu/@cpuset`` CPUs (an ``isolate``
   guest keeps the empty SMT siblings of its cores there); several tenants on one CPU are joined as
   ``"a+b"`` (sorted), so the map and the JSON show the collision instead of silently picking one. An
   emulator/iothread pin on a housekeeping CPU does not make it the tenant's: housekeeping CPUs are shared
   by every ``--emulator share`` guest and the host by design;
3. ``reserved``: CPUs never given to a dedicated vCPU - ``--reserve``, or by default (like ``vmtune
   plan``) the reserve ``core.ledger.reserve`` chooses; with ``isolcpus=`` every CPU outside it
   (housekeeping);
4. ``isolated``: ``isolcpus=`` CPUs no tenant uses yet (free for guests, but the scheduler won't balance
   onto them, so they are shown apart from ordinary free CPUs);
5. ``free``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from vmtune.core.guest import GuestSpec
from vmtune.core.ledger.pool import reservation
from vmtune.core.ledger.tenant import held_cpus, is_shared
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

__all__ = [
    "TENANT_JOIN",
    "CpuClash",
    "Owner",
    "SharedCore",
    "clashes",
    "cpu_owners",
    "owner_tenants",
    "shared_cores",
    "unknown_pins",
]

TENANT_JOIN = "+"


class Owner(StrEnum):
    """The owners that are not tenants."""

    FREE = "free"
    RESERVED = "reserved"
    ISOLATED = "isolated"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuClash:
    """One host CPU pinned by more than one tenant (VT104)."""

    cpu: int
    tenants: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedCore:
    """A physical core whose SMT siblings run different tenants (VT103): they steal each other's
    execution units, ~30% each when both are busy."""

    core: int
    """Dense core index (``Host.cores``)."""
    cpus: CpuSet
    tenants: tuple[str, ...]


def _claims(tenants: Iterable[GuestSpec], housekeeping: CpuSet | None = None) -> dict[int, list[str]]:
    claims: dict[int, list[str]] = {}
    for tenant in sorted(tenants, key=lambda t: t.name):
        held = held_cpus(tenant)
        cpus = held.cpus if housekeeping is None else held.own(housekeeping)
        for cpu in cpus:
            names = claims.setdefault(cpu, [])
            if tenant.name not in names:
                names.append(tenant.name)
    return claims


def cpu_owners(host: Host, tenants: Sequence[GuestSpec], reserved: CpuSet | None = None) -> Mapping[int, str]:
    """The owner of every CPU the host knows (online or not), by the precedence in the module docstring.

    ``reserved`` is ``--reserve``; None or empty means not given: the planner's default reserve (the CLI
    passes an empty set for a missing flag).
    Tenant owners are domain names; the others are ``Owner`` values (a domain literally named ``free``
    would read ambiguously in the JSON, so the map renders tenants from the tenant list, not by name).
    """
    split = reservation(host, reserved or None)
    claims = _claims(tenants, split.housekeeping)
    reserved = split.reserved
    owners: dict[int, str] = {}
    for cpu in host.cpus:
        if not cpu.online:
            owners[cpu.id] = Owner.OFFLINE
        elif cpu.id in claims:
            owners[cpu.id] = TENANT_JOIN.join(claims[cpu.id])
        elif cpu.id in reserved:
            owners[cpu.id] = Owner.RESERVED
        elif cpu.id in host.isolated:
            owners[cpu.id] = Owner.ISOLATED
        else:
            owners[cpu.id] = Owner.FREE
    return owners


def owner_tenants(owner: str, tenant_names: Iterable[str]) -> tuple[str, ...]:
    """The tenant names an owner string stands for (empty for ``Owner`` values)."""
    names = set(tenant_names)
    if owner in names:
        return (owner,)
    parts = tuple(owner.split(TENANT_JOIN))
    return parts if all(p in names for p in parts) else ()


def _conflict(names: Sequence[str], floating: Mapping[str, CpuSet], cpus: CpuSet) -> bool:
    """Two or more tenants, one of them dedicated on ``cpus``: ``--cpu-policy shared`` guests (and the
    shared vCPUs of mixed guests) time-share their pool with each other by design, but never with a guest
    that owns the CPU."""
    return len(names) > 1 and any(not cpus.issubset(floating.get(n, CpuSet())) for n in names)


def _floating(tenants: Sequence[GuestSpec]) -> dict[str, CpuSet]:
    """Per tenant, the CPUs it only floats over: all of a shared guest's, a mixed guest's pool."""
    out: dict[str, CpuSet] = {}
    for t in tenants:
        held = held_cpus(t)
        out[t.name] = held.cpus if is_shared(t) else held.pool - held.vcpu_pins
    return out


def clashes(host: Host, tenants: Sequence[GuestSpec]) -> tuple[CpuClash, ...]:
    """Online host CPUs pinned by two or more tenants (at least one dedicated), by CPU id."""
    online = host.online
    floating = _floating(tenants)
    return tuple(
        CpuClash(cpu=cpu, tenants=tuple(names))
        for cpu, names in sorted(_claims(tenants).items())
        if _conflict(names, floating, CpuSet([cpu])) and cpu in online
    )


def shared_cores(host: Host, tenants: Sequence[GuestSpec]) -> tuple[SharedCore, ...]:
    """Cores whose online siblings are claimed by more than one tenant (one tenant owning a whole core,
    or a core half free, is fine)."""
    claims = _claims(tenants)
    floating = _floating(tenants)
    out: list[SharedCore] = []
    for core in host.cores:
        names: list[str] = []
        for cpu in core.cpus:
            for name in claims.get(cpu, ()):
                if name not in names:
                    names.append(name)
        mine = CpuSet(cpu for cpu in core.cpus if cpu in claims)
        if _conflict(names, floating, mine):
            out.append(SharedCore(core=core.index, cpus=core.cpus, tenants=tuple(sorted(names))))
    return tuple(out)


def unknown_pins(host: Host, tenants: Sequence[GuestSpec]) -> Mapping[str, CpuSet]:
    """Per tenant, pinned CPUs that are offline or not on this host at all (VT108)."""
    online = host.online
    out: dict[str, CpuSet] = {}
    for tenant in sorted(tenants, key=lambda t: t.name):
        bad = held_cpus(tenant).cpus - online
        if bad:
            out[tenant.name] = bad
    return out
