"""How far an online node choice can get on the placement benchmark's streams: a node-only model.

Each NUMA node is a bin holding its guest pool's CPUs (``placement_runs.pool_of``); a guest of the stream
(``placement_runs.stream``, the same seeds and sizes as ``bench/placement.py``) goes whole into one node
that holds it, chosen by a rule, else over the fewest nodes (the largest first, the last by best fit); the
stream stops after 10 refusals in a row. Cores, cache groups and memory are left out: only the node choice
is measured, as nodes spanned over the topology minimum, summed over the seeds.

Rules: ``best`` (the least room that holds it: vmtune's ``--numa-fit pack``), ``first`` (the lowest node id
that holds it: kubelet's topology manager hint), ``worst`` (the most room: ``--numa-fit spread``), and
``hindsight``: per stream, the best of the best-fit run and ``--tries`` runs that take a random node that
holds the guest now and then (5-30 % of the choices) and the best fit otherwise. ``randomized`` is the mean
of those runs: a departure from best fit costs nodes on average, and hindsight only wins by picking, per
stream, the run whose departures happened to pay. No online rule knows which of those runs will turn out
best; hindsight is what knowing the stream would be worth.

Run: ``PYTHONPATH=src VMTUNE_CORPORA=../shared/corpora .venv/bin/python bench/node_fit.py [--seeds 12]``
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from placement_hosts import SHAPES
from placement_metrics import fewest
from placement_runs import REFUSALS, pool_of, stream

from vmtune.core.topology.model import Host

Choose = Callable[[list[int], list[int], int], int]
"""(free CPUs per node, nodes that hold the guest, vCPUs) -> the node."""


def best(free: list[int], fits: list[int], vcpus: int) -> int:
    return min(fits, key=lambda i: (free[i], i))


def first(free: list[int], fits: list[int], vcpus: int) -> int:
    return fits[0]


def worst(free: list[int], fits: list[int], vcpus: int) -> int:
    return max(fits, key=lambda i: (free[i], -i))


def randomized(rng: random.Random, share: float) -> Choose:
    def choose(free: list[int], fits: list[int], vcpus: int) -> int:
        return rng.choice(fits) if rng.random() < share else best(free, fits, vcpus)

    return choose


def nodes_over(host: Host, seed: int, choose: Choose) -> int:
    """Nodes spanned over the topology minimum, summed over the stream's placed guests."""
    pool = pool_of(host)
    sizes = [len(n.cpus & pool) for n in host.nodes if n.cpus & pool]
    free = list(sizes)
    over = refusals = 0
    for vcpus in stream(host, seed):
        if sum(free) < vcpus:
            refusals += 1
            if refusals >= REFUSALS:
                break
            continue
        refusals = 0
        fits = [i for i, room in enumerate(free) if room >= vcpus]
        if fits:
            free[choose(free, fits, vcpus)] -= vcpus
            used = 1
        else:
            used, need, taken = 0, vcpus, set()
            while True:
                last = [i for i in range(len(free)) if i not in taken and free[i] >= need]
                used += 1
                if last:
                    free[min(last, key=lambda i: (free[i], i))] -= need
                    break
                i = max((i for i in range(len(free)) if i not in taken), key=lambda i: (free[i], -i))
                need -= free[i]
                free[i] = 0
                taken.add(i)
        over += used - fewest(sizes, vcpus)
    return over


def _figure(x: float) -> str:
    return f"{x:.0f}" if x == int(x) else f"{x:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=12, metavar="N", help="seeds 1..N per host (default 12)")
    parser.add_argument("--tries", type=int, default=200, help="randomized runs per stream for hindsight")
    args = parser.parse_args(argv)
    rules: dict[str, Choose] = {"best": best, "first": first, "worst": worst}
    hosts = [s for s in SHAPES if len(s.host().nodes) > 1]
    print("| host | " + " | ".join(rules) + " | randomized (mean) | hindsight |")
    print("|---|" + "---:|" * (len(rules) + 2))
    totals: list[float] = [0] * (len(rules) + 2)
    for shape in hosts:
        host = shape.host()
        seeds = range(1, args.seeds + 1)
        row: list[float] = [sum(nodes_over(host, s, rule) for s in seeds) for rule in rules.values()]
        rng = random.Random(f"hindsight-{shape.name}")
        shares = (0.05, 0.1, 0.2, 0.3)
        tries = [randomized(rng, shares[k % len(shares)]) for k in range(args.tries)]
        # every randomized run on every stream, once: the mean and the per-stream best come from the same runs
        got = {s: [nodes_over(host, s, rule) for rule in tries] for s in seeds}
        row.append(sum(sum(g) / len(g) for g in got.values()))
        row.append(sum(min(nodes_over(host, s, best), *got[s]) for s in seeds))
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        print(f"| {shape.name} | " + " | ".join(map(_figure, row)) + " |", flush=True)
    print("| **all** | " + " | ".join(map(_figure, totals)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
