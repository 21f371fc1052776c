"""The free pool a guest is planned into: online CPUs minus reserved minus what other tenants pinned.

Rules:

* offline CPUs are never used;
* *reserved* CPUs are host housekeeping and never get a dedicated vCPU. ``--reserve CPUSET`` names them
  (CPUs the host does not have are refused);
  without it, on a host without ``isolcpus=``, vmtune reserves by default the CPUs ``core.ledger.reserve``
  chooses: a cluster of little cores on hybrid hosts, a whole small shared cache group per node or socket
  where such groups split a node, else **the first physical core of each NUMA node** (all of its SMT
  threads; on the usual one-node-per-socket host that is the first core of each socket). The kernel's own
  kthreads, IRQs and the emulator threads of ``--emulator share`` guests need somewhere to run that is not
  a guest's dedicated core, near the guests (an emulator thread touches guest memory for every emulated
  device access), without cutting the cache groups guests are sized to;
* with ``isolcpus=`` on the kernel command line the operator has already split the host: dedicated vCPUs go
  *inside* the isolated set and the emulator/housekeeping threads *outside* it (the scheduler does not
  balance onto isolated CPUs, so a thread left floating there would be stuck);
* a tenant's CPUs (``core.ledger.tenant.held_cpus``) are taken, and its memory and hugepages are
  committed on their nodes (``core.ledger.memory``);
  a tenant with none of them floats over every CPU, including the ones this plan dedicates: a warning;
* the guest's own current pins are free for itself (re-planning must be able to keep them): every tenant
  that is the same guest (``same_guest``) is left out;
* ``--cpu-policy shared`` guests (vmtune intent) time-share a pool: another shared guest may float over the
  same CPUs, so for a shared guest only *dedicated* tenants' CPUs are taken (``shared_free``); a dedicated
  guest never gets a CPU a shared guest floats over (it would not be its own). With isolcpus the pool is
  the housekeeping side: the scheduler does not balance threads across isolated CPUs, so a multi-CPU pool
  there would leave every vCPU on the first CPU it woke on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vmtune.core.guest import GuestSpec
from vmtune.core.ledger.memory import MemoryBook, memory_book
from vmtune.core.ledger.reserve import default_reserve_of
from vmtune.core.ledger.tenant import held_cpus, is_shared, others_of
from vmtune.core.placement.sharing import keeps_alone, keeps_cores_whole
from vmtune.core.plan import Level, Note
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["Ledger", "Reservation", "Tenant", "build_ledger", "default_reserve", "is_shared", "reservation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    name: str
    cpus: CpuSet
    """Every host CPU the tenant takes."""
    vcpus: int
    shared: bool = False
    """A ``--cpu-policy shared`` guest: its CPUs are a pool other shared guests may float over too."""
    cache: CpuSet = field(default_factory=CpuSet)
    """The CPUs by which it uses a cache group (``Holding.own``; none for a shared guest): emulator and
    iothread pins on housekeeping CPUs never make a group busy (``core.placement.sharing``)."""
    alone: bool = False
    """It keeps its cache groups to itself (``sharing.keeps_alone``): nobody joins one while an idle group
    could take them."""
    whole_cores: bool = True
    """It keeps its physical cores to itself (``sharing.keeps_cores_whole``): nobody takes the free thread
    of a core it half uses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ledger:
    online: CpuSet
    reserved: CpuSet
    """CPUs no dedicated vCPU may use (housekeeping; with isolcpus: everything outside it)."""
    housekeeping: CpuSet
    """Where ``--emulator share`` threads go: the reserved CPUs (or the non-isolated ones)."""
    taken: CpuSet
    """CPUs other tenants pinned."""
    free: CpuSet
    """CPUs a dedicated vCPU of this guest may get."""
    shared_free: CpuSet
    """The pool a ``--cpu-policy shared`` guest may float over: not reserved, not any dedicated tenant's."""
    tenants: tuple[Tenant, ...]
    isolcpus: bool
    notes: tuple[Note, ...]
    memory: MemoryBook
    """Each node's memory and hugepages for guests, less what the other tenants commit
    (``core.ledger.memory``)."""


def default_reserve(host: Host) -> CpuSet:
    """The CPUs reserved when ``--reserve`` is not given (``core.ledger.reserve``)."""
    return default_reserve_of(host).cpus


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """How the host's online CPUs are split before any tenant: the one rule the planner's ledger and
    ``vmtune host --map`` (``core.ownership``) both use."""

    reserved: CpuSet
    """CPUs no dedicated vCPU may use (housekeeping; with isolcpus: everything outside it)."""
    housekeeping: CpuSet
    """Where ``--emulator share`` threads go: the reserved CPUs (or the non-isolated ones)."""
    isolated: CpuSet
    """Online ``isolcpus=`` CPUs (empty without isolcpus)."""
    default: bool
    """The reserve is vmtune's default (no ``--reserve`` given, no isolcpus)."""
    why: str = ""
    """Which default rule chose the reserve (``DefaultReserve.why``); empty when it is not the default."""


def reservation(host: Host, reserve: CpuSet | None) -> Reservation:
    """Reserved and housekeeping CPUs for ``--reserve`` (None: not given, the documented default)."""
    online = host.online
    isolated = host.isolated & online
    if isolated:
        housekeeping = online - isolated
        return Reservation(
            reserved=housekeeping | ((reserve or CpuSet()) & online),
            housekeeping=housekeeping,
            isolated=isolated,
            default=False,
        )
    if reserve is None:
        chosen = default_reserve_of(host)
        return Reservation(reserved=chosen.cpus, housekeeping=chosen.cpus, isolated=CpuSet(), default=True,
                           why=chosen.why)  # fmt: skip
    reserved = reserve & online
    return Reservation(reserved=reserved, housekeeping=reserved, isolated=CpuSet(), default=False)


def _absent_reserve(host: Host, guest: GuestSpec, reserve: CpuSet | None) -> list[Note]:
    """A ``--reserve`` naming CPUs the host does not have is a typo: InputError naming them. The same
    reserve read back from the guest's own metadata was written on another host (the guest migrated
    here): a warning, the absent CPUs ignored, so the hook still places the guest."""
    present = CpuSet(c.id for c in host.cpus)
    absent = (reserve or CpuSet()) - present
    if not absent:
        return []
    if guest.intent is None or guest.intent.reserve != reserve:
        raise InputError(f"--reserve {reserve}: no CPU {absent} on this host (its CPUs: {present or 'none'})")
    return [
        Note(
            topic="host",
            level=Level.WARNING,
            message=f"reserve {reserve} in the guest's metadata names CPUs {absent} this host does not "
            "have; ignored",
        )
    ]


def _reserve_notes(split: Reservation) -> list[Note]:
    """Why these CPUs are kept from dedicated vCPUs: isolcpus, the default reserve, or ``--reserve``."""
    isolated, reserved, housekeeping = split.isolated, split.reserved, split.housekeeping
    if isolated:
        notes = [
            Note(
                topic="host",
                message=f"isolcpus={isolated}: dedicated vCPUs go inside it, emulator and housekeeping "
                f"threads on {housekeeping or 'nothing'} outside it",
            )
        ]
        if not housekeeping:
            notes.append(
                Note(
                    topic="host",
                    level=Level.WARNING,
                    message="every online CPU is in isolcpus: nothing is left for housekeeping threads",
                )
            )
        return notes
    if split.default:
        return [
            Note(
                topic="host",
                message=f"reserved CPUs {reserved or 'none'} for host housekeeping (default: {split.why}; "
                "--reserve CPUSET to change)",
            )
        ]
    return [Note(topic="host", message=f"reserved CPUs {reserved or 'none'} (--reserve)")]


def build_ledger(
    *,
    host: Host,
    guest: GuestSpec,
    tenants: Sequence[GuestSpec],
    reserve: CpuSet | None,
    memory_reserve_kib: int | None = None,
) -> Ledger:
    online = host.online
    split = reservation(host, reserve)
    isolated, reserved, housekeeping = split.isolated, split.reserved, split.housekeeping
    notes = [*_absent_reserve(host, guest, reserve), *_reserve_notes(split)]
    taken = CpuSet()
    dedicated = CpuSet()
    ledger_tenants: list[Tenant] = []
    floating: list[str] = []
    for tenant in sorted(others_of(guest, tenants), key=lambda t: t.name):
        held = held_cpus(tenant)
        cpus = held.cpus
        if not cpus:
            floating.append(tenant.name)
            continue
        # Tenants' emulator/iothread pins on housekeeping CPUs are shared by design (emulator share); a
        # vCPU a tenant pinned there is reserved anyway, so nothing of housekeeping is taken.
        taken = taken | (cpus - housekeeping)
        if not held.shared:
            dedicated = dedicated | held.own(housekeeping)  # a mixed guest's pool is not its own
        cache = CpuSet() if held.shared else held.own(housekeeping)
        ledger_tenants.append(
            Tenant(
                name=tenant.name,
                cpus=cpus,
                vcpus=tenant.vcpus,
                shared=held.shared,
                cache=cache,
                alone=keeps_alone(tenant.intent),
                whole_cores=keeps_cores_whole(tenant.intent),
            )
        )
    if floating:
        notes.append(
            Note(
                topic="tenants",
                level=Level.WARNING,
                message=f"{', '.join(floating)} {'has' if len(floating) == 1 else 'have'} no CPU pins and "
                "will float over every CPU, including the cores dedicated here; pin them too (vmtune apply)",
            )
        )
    offline_pins = taken - online
    if offline_pins:
        notes.append(
            Note(
                topic="tenants",
                level=Level.WARNING,
                message=f"tenants pin offline or missing CPUs {offline_pins}; ignored",
            )
        )
    base = isolated if isolated else online
    free = base - reserved - taken
    pool = housekeeping - (reserve or CpuSet()) if isolated else online - reserved
    return Ledger(
        online=online,
        reserved=reserved,
        housekeeping=housekeeping,
        taken=taken & online,
        free=free,
        shared_free=pool - dedicated,
        tenants=tuple(ledger_tenants),
        isolcpus=bool(isolated),
        notes=tuple(notes),
        memory=memory_book(host, others_of(guest, tenants), memory_reserve_kib),
    )
