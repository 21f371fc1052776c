"""What the node and cache fit do, measured: spans over the topology minimum, needless shares, the
balance of --numa-fit pack vs spread, and the planning time on a big host.

1. Seeded streams of guests (1-32 vCPUs, 256 MiB each, default intent) on named and corpus hosts until the
   host refuses 4: per host, guests placed and the NUMA nodes / cache groups spanned over the topology
   minimum (nodes: ceil(vCPUs / node CPUs); groups: ceil(vCPUs / CPUs of a group of the coarsest cache
   level that splits a node)), summed over the seeds; and the guests ``check`` reports VT105 on when the
   stream ends.
2. 8-vCPU guests on 8-core CCD hosts, with ``--cache-fit pack`` (the default) and ``own``: VT105 on each
   guest as it is placed, and how many joined a CCD another guest uses while one was idle (pack does so on
   purpose, keeping idle CCDs whole; own only where the guest closes the CCD's last free CPUs).
3. The busiest node's vCPUs over the mean at 25 % and 50 % fill, --numa-fit pack and spread.
4. One 8-vCPU and one 62-vCPU guest planned on huge-960 (960 CPUs, 16 nodes) beside 100 4-vCPU tenants:
   min / median / max process CPU time of 30 rounds.

Run: ``PYTHONPATH=src VMTUNE_CORPORA=../shared/corpora .venv/bin/python bench/fit.py [--seeds 10] [--quick]``
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hosts import host_named  # noqa: E402
from vmtune.adapters.sysfs import read_sysfs  # noqa: E402
from vmtune.core.audit.engine import run_rules  # noqa: E402
from vmtune.core.guest import GuestSpec  # noqa: E402
from vmtune.core.intent.model import CacheFit, Fit, Intent  # noqa: E402
from vmtune.core.ledger.tenant import as_planned  # noqa: E402
from vmtune.core.placement.sharing import split_levels  # noqa: E402
from vmtune.core.planner import plan_guest  # noqa: E402
from vmtune.core.topology.model import Host  # noqa: E402
from vmtune.cpuset import CpuSet  # noqa: E402
from vmtune.errors import VmtuneError  # noqa: E402

NAMED = ("epyc-2ccx-per-node", "epyc-milan-nps1", "epyc-genoa-nps1", "phytium-s2500", "snc2-xeon", "big-256",
         "hybrid-pe", "dual-skylake-ht-interleaved")  # fmt: skip
CORPUS = ("utillinux-x86_64-epyc_7451", "hwloc-128arm-2pa2n8cluster4co", "hwloc-memorysidecaches",
          "utillinux-rv64-milkvpioneer")  # fmt: skip
SIZES = (1, 2, 2, 4, 4, 6, 8, 8, 12, 16, 32)
VT105 = frozenset({"VT105"})


def _host(name: str) -> Host:
    if name in NAMED or name == "huge-960":
        return host_named(name)
    return read_sysfs(
        Path(os.environ.get("VMTUNE_CORPORA", ROOT.parent / "shared" / "corpora")) / "sysfs" / name
    )


def _guest(i: int, vcpus: int) -> GuestSpec:
    return GuestSpec(name=f"g{i}", source=f"g{i}.xml", vcpus=vcpus, memory_kib=vcpus * 256 * 1024)


def _cpus(guest: GuestSpec) -> CpuSet:
    return CpuSet(p.cpus.first() for p in guest.vcpupins)


def spans(name: str, seeds: int) -> tuple[int, int, int, int]:
    """(guests placed, nodes over the minimum, groups over the minimum, guests with VT105)."""
    host = _host(name)
    levels = split_levels(host)
    node_size = max(len(n.cpus) for n in host.nodes) if host.nodes else len(host.online)
    group_size = max((len(g.cpus) for g in host.groups(levels[0])), default=1) if levels else 0
    placed_all = nodes_over = groups_over = flagged = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        placed: list[GuestSpec] = []
        refused = 0
        while refused < 4 and len(placed) < 60:
            g = _guest(len(placed), rng.choice(SIZES))
            try:
                plan = plan_guest(host=host, guest=g, tenants=placed, intent=Intent())
            except VmtuneError:
                refused += 1
                continue
            placed.append(as_planned(g, plan))
            cpus = _cpus(placed[-1])
            nodes_over += len(host.nodes_of(cpus)) - math.ceil(g.vcpus / node_size)
            if levels:
                groups = {cpu.caches.get(levels[0]) for c in cpus if (cpu := host.cpu(c)) is not None}
                groups_over += len(groups) - math.ceil(g.vcpus / group_size)
        placed_all += len(placed)
        flagged += len({f.guest for f in run_rules(host, placed, select=VT105)})
    return placed_all, nodes_over, groups_over, flagged


def ccd_stream(name: str, fit: CacheFit) -> tuple[int, int, int]:
    """(8-vCPU guests placed, those with VT105 when placed, those joining a used CCD while one was idle)."""
    host = _host(name)
    ccds = [g.cpus for g in host.groups(3)]
    placed: list[GuestSpec] = []
    flagged = joined = 0
    while True:
        g = _guest(len(placed), 8)
        try:
            plan = plan_guest(host=host, guest=g, tenants=placed, intent=Intent(cache_fit=fit))
        except VmtuneError:
            break
        used = CpuSet().union(*(_cpus(t) for t in placed))
        new = as_planned(g, plan)
        mine = [c for c in ccds if not c.isdisjoint(_cpus(new))]
        if any(c.isdisjoint(used) for c in ccds) and any(not c.isdisjoint(used) for c in mine):
            joined += 1
        flagged += bool(run_rules(host, (new,), tenants=placed, select=VT105))
        placed.append(new)
    return len(placed), flagged, joined


def balance(name: str, fit: Fit, seeds: int) -> tuple[float, float]:
    """Busiest node's vCPUs over the mean at 25 % and 50 % of the host's CPUs placed."""
    host = _host(name)
    out: dict[float, list[float]] = {0.25: [], 0.5: []}
    for seed in range(seeds):
        rng = random.Random(seed)
        placed: list[GuestSpec] = []
        used = 0
        for fill, ratios in out.items():
            while used < fill * len(host.online):
                g = _guest(len(placed), rng.choice((1, 2, 2, 4, 4, 8)))
                try:
                    plan = plan_guest(host=host, guest=g, tenants=placed, intent=Intent(numa_fit=fit))
                except VmtuneError:
                    break
                placed.append(as_planned(g, plan))
                used += g.vcpus
            load = dict.fromkeys((n.id for n in host.nodes), 0)
            for t in placed:
                for cpu in _cpus(t):
                    load[host.node_of(cpu)] += 1
            ratios.append(max(load.values()) / statistics.mean(load.values()))
    return statistics.mean(out[0.25]), statistics.mean(out[0.5])


def timing(rounds: int) -> dict[str, tuple[float, float, float]]:
    host = host_named("huge-960")
    placed: list[GuestSpec] = []
    for i in range(100):
        g = GuestSpec(name=f"t{i:03d}", source="t.xml", vcpus=4, memory_kib=1024 * 1024)
        placed.append(as_planned(g, plan_guest(host=host, guest=g, tenants=placed, intent=Intent())))
    out = {}
    for label, vcpus in (("8 vCPUs", 8), ("62 vCPUs (2 nodes)", 62)):
        times = []
        for _ in range(rounds):
            g = _guest(999, vcpus)
            start = time.process_time()
            plan_guest(host=host, guest=g, tenants=placed, intent=Intent())
            times.append(1000 * (time.process_time() - start))
        out[label] = (min(times), statistics.median(times), max(times))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="one seed, three hosts, 5 timing rounds")
    args = parser.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    hosts = (
        ("epyc-milan-nps1", "phytium-s2500", "dual-skylake-ht-interleaved")
        if args.quick
        else (*NAMED, *CORPUS)
    )
    print(f"| host | placed | nodes over min | groups over min | guests with VT105 |  ({seeds} seeds)")
    print("|---|---|---|---|---|")
    for name in hosts:
        print("| {} | {} | {} | {} | {} |".format(name, *spans(name, seeds)), flush=True)
    print("\n| CCD host, 8-vCPU guests | cache fit | placed | VT105 when placed | joined a used CCD while "
          "one was idle |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name in ("epyc-milan-nps1", "epyc-genoa-nps1"):
        for fit in (CacheFit.PACK, CacheFit.OWN):
            print("| {} | {} | {} | {} | {} |".format(name, fit, *ccd_stream(name, fit)), flush=True)
    print("\n| host | numa-fit | busiest node / mean at 25 % fill | at 50 % |")
    print("|---|---|---|---|")
    for name in ("dual-skylake-ht-interleaved", "epyc-milan-nps1", "epyc-2ccx-per-node", "big-256")[
        : 2 if args.quick else 4
    ]:
        for fit in Fit:
            low, half = balance(name, fit, min(seeds, 12) if not args.quick else 1)
            print(f"| {name} | {fit} | {low:.2f}x | {half:.2f}x |", flush=True)
    print("\nhuge-960 (960 CPUs, 16 nodes) with 100 tenants, planning one guest (ms: min / median / max):")
    for label, (least, median, most) in timing(5 if args.quick else 30).items():
        print(f"  {label}: {least:.1f} / {median:.1f} / {most:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
