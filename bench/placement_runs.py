"""Seeded guest streams and the three placers that take them: vmtune (through ``vmtune.service``, each
guest planned next to the earlier ones as tenants, as ``vmtune plan`` does in a batch) and the two kubelet
variants (``bench/kubelet.py``, each keeping its own assignment).

Every placer gets the same stream and the same reserve (vmtune's: its default, or what isolcpus leaves
outside; kubelet gets it as ``reservedSystemCPUs``), takes the guests one after another, skips a guest it
refuses and stops after 10 refusals in a row.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from kubelet import Kubelet, topology_of

from vmtune.core.audit.engine import Finding, run_rules
from vmtune.core.guest import GuestSpec
from vmtune.core.intent import model
from vmtune.core.intent.model import KNOBS, Intent, ThreadPolicy
from vmtune.core.ledger.pool import reservation
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.service import next_tenants, plan_document
from vmtune.xmlmap.guest import read_guest
from vmtune.xmlmap.safe import parse_xml

__all__ = [
    "ALGOS",
    "Placed",
    "Run",
    "bench_intent",
    "knob_values",
    "pool_of",
    "run_kubelet",
    "run_vmtune",
    "runs",
    "stream",
]

REFUSALS = 10
MIB_PER_VCPU = 128
"""Small enough that CPUs, not memory, fill every host: kubelet's CPU manager knows no memory."""
ALGOS = ("vmtune", "kubelet", "kubelet-uncore")


@dataclass(frozen=True, slots=True, kw_only=True)
class Placed:
    index: int
    """Position in the stream."""
    vcpus: int
    cpus: CpuSet
    """The host CPUs its vCPUs run on."""
    held: CpuSet
    """Every CPU it keeps from other guests (idle siblings included)."""


@dataclass
class Run:
    algo: str
    placed: list[Placed] = field(default_factory=list)
    refused: int = 0
    seconds: list[float] = field(default_factory=list)
    audits: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    """``vmtune check``'s findings on the guests so far: "half" when half the pool is used (an idle cache
    group can still exist, so VT105 can fire), "final" at the end (vmtune only)."""


def pool_of(host: Host) -> CpuSet:
    """The CPUs any guest may get: online minus the reserve (or the isolcpus set)."""
    return host.online - reservation(host, None).reserved


def stream(host: Host, seed: int, *, fill: float = 3.0) -> list[int]:
    """vCPU counts of a seeded stream of mixed guests whose total is ``fill`` times the pool.

    Sizes are whole cores of the host's SMT width (what ``full-pcpus-only`` and thread policy ``require``
    both admit): 1-8 cores, and now and then one wider than a node (two cores more than a node's pool)."""
    rng = random.Random(f"{seed}-{host.name}")
    unit = max(len(c.cpus) for c in host.cores)
    pool = pool_of(host)
    node_pool = max(len(n.cpus & pool) for n in host.nodes)
    out: list[int] = []
    while sum(out) < fill * len(pool):
        if len(host.nodes) > 1 and rng.random() < 0.06:
            n = unit * math.ceil((node_pool + 2 * unit) / unit)
        else:
            n = unit * rng.choice((1, 1, 2, 2, 3, 4, 4, 6, 8))
        out.append(min(n, len(pool) - len(pool) % unit))
    return out


def knob_values() -> dict[str, tuple[str, ...]]:
    """The placement-fit knobs this checkout has (``--numa-fit``, ``--cache-fit``) and their values."""
    names = {f.name for f in dataclasses.fields(Intent)}
    enums = {"numa_fit": getattr(model, "Fit", None), "cache_fit": getattr(model, "CacheFit", None)}
    return {
        name: tuple(str(v) for v in enum) if enum is not None else ("pack", "spread")
        for name, enum in enums.items()
        if name in names
    }


def bench_intent(**fits: str) -> Intent:
    parse = {k.name: k.parse for k in KNOBS}
    extra = {name: parse[name](value) for name, value in fits.items()}
    return Intent(thread_policy=ThreadPolicy.REQUIRE, **extra)


def _domain_xml(host: Host, name: str, vcpus: int) -> bytes:
    arch, machine = ("aarch64", "virt") if host.arch == "aarch64" else ("x86_64", "q35")
    return (
        f"<domain type='kvm'><name>{name}</name><uuid>{uuid.uuid5(uuid.NAMESPACE_DNS, name)}</uuid>"
        f"<memory unit='KiB'>{vcpus * MIB_PER_VCPU * 1024}</memory><vcpu placement='static'>{vcpus}</vcpu>"
        f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os></domain>"
    ).encode()


def _vcpu_cpus(guest: GuestSpec) -> CpuSet:
    return CpuSet().union(*(p.cpus for p in guest.vcpupins))


def run_vmtune(
    host: Host, sizes: Sequence[int], *, fits: dict[str, str] | None = None, until: float = 1.0,
    audit: bool = True,
) -> Run:  # fmt: skip
    """vmtune on the stream: each guest a domain document planned by ``service.plan_document`` next to the
    earlier ones; stops early once ``until`` of the pool is used. The final documents are read back as
    ``vmtune check`` reads files and audited with its rules, at half fill and at the end."""
    run = Run("vmtune" if not fits else "vmtune " + " ".join(f"{k}={v}" for k, v in fits.items()))
    intent = bench_intent(**(fits or {}))
    pool = pool_of(host)
    tenants: list[GuestSpec] = []
    documents: list[GuestSpec] = []
    refusals = 0
    for i, n in enumerate(sizes):
        name = f"g{i:03d}"
        start = time.process_time()
        try:
            planned = plan_document(
                _domain_xml(host, name, n),
                source=f"{name}.xml",
                host=host,
                tenants=tenants,
                intent=intent,
                caps=None,
            )
        except InfeasibleError:
            run.seconds.append(time.process_time() - start)
            run.refused += 1
            refusals += 1
            if refusals >= REFUSALS:
                break
            continue
        run.seconds.append(time.process_time() - start)
        refusals = 0
        tenants = next_tenants(tenants, planned)
        seen = read_guest(parse_xml(planned.after, source=f"{name}.xml", root="domain"), source=f"{name}.xml")
        documents.append(seen)
        held = _vcpu_cpus(seen) | (seen.vcpu_cpuset or CpuSet())
        run.placed.append(Placed(index=i, vcpus=n, cpus=_vcpu_cpus(seen), held=held))
        used = len(CpuSet().union(*(p.held for p in run.placed)) & pool)
        if audit and "half" not in run.audits and used >= len(pool) / 2:
            run.audits["half"] = run_rules(host, documents)
        if used >= until * len(pool):
            break
    if audit:
        run.audits["final"] = run_rules(host, documents)
    return run


def run_kubelet(host: Host, sizes: Sequence[int], *, uncore: bool, until: float = 1.0) -> Run:
    run = Run("kubelet-uncore" if uncore else "kubelet")
    reserved = frozenset(reservation(host, None).reserved)
    kubelet = Kubelet(topo=topology_of(host), reserved=reserved, uncore=uncore)
    pool = pool_of(host)
    refusals = 0
    for i, n in enumerate(sizes):
        start = time.process_time()
        cpus = kubelet.allocate(n)
        run.seconds.append(time.process_time() - start)
        if cpus is None:
            run.refused += 1
            refusals += 1
            if refusals >= REFUSALS:
                break
            continue
        refusals = 0
        run.placed.append(Placed(index=i, vcpus=n, cpus=CpuSet(cpus), held=CpuSet(cpus)))
        if len(CpuSet().union(*(p.held for p in run.placed)) & pool) >= until * len(pool):
            break
    return run


def runs(host: Host, seed: int) -> Iterator[Run]:
    """The three placers on one stream (vmtune with ``--numa-fit pack --cache-fit pack`` where the
    checkout has those knobs: the default, said out loud)."""
    sizes = stream(host, seed)
    fits = dict.fromkeys(knob_values(), "pack")
    yield dataclasses.replace(run_vmtune(host, sizes, fits=fits or None), algo="vmtune")
    yield run_kubelet(host, sizes, uncore=False)
    yield run_kubelet(host, sizes, uncore=True)
