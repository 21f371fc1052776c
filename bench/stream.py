"""Place a stream of same-sized guests on one host until it refuses one, and count the ones that straddle.

For the host shapes where the default reserve, the core kind or the lack of cache data decide: each guest is
planned with ``plan_guest`` against the guests placed before it, like the hook does on one host. Printed: the
default reserve and its rule, the first guest's CPU notes, every guest that spans more than one cache group
(the finest cache shared by several cores), NUMA node or socket, and a summary line.

Run: ``.venv/bin/python bench/stream.py HOST [--vcpus N] [--core-kind big|little] [--profile latency]``, where
HOST is a sysfs root or snapshot, a named test host (``tests/data/hosts/hosts.toml``), or ``s2500x2`` (a
2-socket Phytium S2500: 2 x 8 nodes x 8 cores, 4-core L2 clusters).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hosts import host_of  # noqa: E402
from planner_hosts import as_tenant, guest  # noqa: E402
from sysfsgen import NAMED_HOSTS, CoreKind, HostSpec  # noqa: E402
from vmtune.adapters.snapshot import read_snapshot  # noqa: E402
from vmtune.adapters.sysfs import read_sysfs  # noqa: E402
from vmtune.core.guest import GuestSpec  # noqa: E402
from vmtune.core.intent.model import CoreKind as Kind  # noqa: E402
from vmtune.core.intent.model import Intent, Profile  # noqa: E402
from vmtune.core.ledger.pool import reservation  # noqa: E402
from vmtune.core.planner import plan_guest  # noqa: E402
from vmtune.core.topology.model import Host  # noqa: E402
from vmtune.cpuset import CpuSet  # noqa: E402
from vmtune.errors import InfeasibleError  # noqa: E402

S2500X2 = HostSpec(name="s2500x2", arch="aarch64", sockets=2, nodes_per_socket=8, cores_per_node=8,
                   kinds=(CoreKind(cores=8, l2_cores=4, l2_kib=2048, capacity=1024),))  # fmt: skip


def load(name: str) -> Host:
    if name == "s2500x2":
        return host_of(S2500X2)
    if name in NAMED_HOSTS:
        return host_of(NAMED_HOSTS[name])
    root = Path(name)
    return read_sysfs(root, tree=read_snapshot(root).tree) if root.is_file() else read_sysfs(root)


def group_of(host: Host, cpu: int) -> int | None:
    """The finest cache shared by several cores that ``cpu`` sits in (None: none known)."""
    core = host.core_of(cpu)
    for level in sorted(core.caches) if core else ():
        group = host.caches[core.caches[level]]  # type: ignore[union-attr]
        if len(group.cpus) > len(core.cpus):  # type: ignore[union-attr]
            return group.index
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("host")
    parser.add_argument("--vcpus", type=int, default=4)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--core-kind", choices=[k.value for k in Kind])
    parser.add_argument("--profile", choices=[p.value for p in Profile])
    args = parser.parse_args()
    host = load(args.host)
    intent = Intent(
        core_kind=Kind(args.core_kind) if args.core_kind else None,
        profiles=(Profile(args.profile),) if args.profile else (),
    )
    split = reservation(host, None)
    print(f"default reserve: {split.reserved or 'none'} ({getattr(split, 'why', '') or 'no rule named'})")
    tenants: list[GuestSpec] = []
    counts = {"group": 0, "node": 0, "socket": 0}
    for i in range(args.count):
        spec = guest(name=f"g{i}", vcpus=args.vcpus, memory_gib=0.25)
        try:
            plan = plan_guest(host=host, guest=spec, tenants=tenants, intent=intent)
        except InfeasibleError as err:
            print(f"g{i}: refused: {err}")
            break
        cpus = CpuSet(p.cpus.first() for p in plan.vcpupins or ())
        spans = {
            "group": len({group_of(host, c) for c in cpus}),
            "node": len(host.nodes_of(cpus)),
            "socket": len({host.cpu(c).socket for c in cpus}),  # type: ignore[union-attr]
        }
        if i == 0:
            for note in plan.notes:
                if note.topic == "cpu":
                    print(f"g0 note: {note.message}")
        if i == 0 or max(spans.values()) > 1:
            print(f"g{i}: CPUs {cpus} · " + " · ".join(f"{n} {what}(s)" for what, n in spans.items()))
        for what, n in spans.items():
            counts[what] += n > 1
        tenants.append(as_tenant(plan, spec))
    print(
        f"placed {len(tenants)} · spanning more than one " + ", ".join(f"{w}: {n}" for w, n in counts.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
