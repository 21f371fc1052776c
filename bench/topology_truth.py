"""Does the guest topology vmtune writes tell the truth about the host siblings its vCPUs sit on?

``python bench/topology_truth.py``: every named host (``tests/data/hosts/hosts.toml``), vCPU counts 1..17,
three intents (default, latency, --thread-policy isolate), on an empty host and after six seeded tenants;
each guest planned fresh, planned again as vmtune left it (the kept shape), and given to the hook
(``keep_abi``) with a topology of its own. The written XML is read back as ``check`` reads it and judged
twice: by VT109, and by a referee written here from QEMU's numbering (threads innermost: ``threads=t``
says vCPUs k*t..k*t+t-1 share one core and no others do) that shares no code with vmtune. Prints the
plans judged, VT109 findings, referee violations, and how many of either came without a plan warning.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hosts import host_named  # noqa: E402
from sysfsgen import NAMED_HOSTS  # noqa: E402
from vmtune.core.audit.engine import run_rules  # noqa: E402
from vmtune.core.guest import GuestSpec  # noqa: E402
from vmtune.core.intent.model import Intent, Profile, ThreadPolicy  # noqa: E402
from vmtune.core.plan import Level, Plan  # noqa: E402
from vmtune.core.planner import plan_guest  # noqa: E402
from vmtune.core.topology.model import Host  # noqa: E402
from vmtune.errors import InfeasibleError  # noqa: E402
from vmtune.xmlmap.apply import apply_plan  # noqa: E402
from vmtune.xmlmap.guest import read_guest  # noqa: E402

INTENTS = (Intent(), Intent(profiles=(Profile.LATENCY,)), Intent(thread_policy=ThreadPolicy.ISOLATE))


def domain(name: str, vcpus: int, topology: str = "") -> etree._ElementTree:
    return etree.ElementTree(
        etree.fromstring(
            f"<domain type='kvm'><name>{name}</name><memory unit='KiB'>{vcpus * 262144}</memory>"
            f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64'>hvm</type></os>{topology}</domain>"
        )
    )


def truthful(host: Host, guest: GuestSpec) -> bool:
    """The referee: with ``threads=t``, vCPUs share a host core exactly when they share a thread group."""
    t = guest.topology.threads if guest.topology is not None else 1
    core_of = {cpu: i for i, core in enumerate(host.cores) for cpu in core.cpus}
    cores = []
    for pin in sorted(guest.vcpupins, key=lambda p: p.vcpu):
        owners = {core_of.get(cpu) for cpu in pin.cpus}
        if len(owners) != 1 or None in owners:
            return t == 1  # a vCPU spread over cores is nobody's sibling
        cores.append(owners.pop())
    return all(
        (cores[a] == cores[b]) == (a // t == b // t)
        for a in range(len(cores))
        for b in range(a + 1, len(cores))
    )


def tenants_of(host: Host, seed: str, count: int) -> list[GuestSpec]:
    rng, placed = random.Random(seed), list[GuestSpec]()
    for i in range(count):
        doc = domain(f"t{i}", rng.choice((1, 2, 3, 4)))
        try:
            plan = plan_guest(
                host=host, guest=read_guest(doc, source="t.xml"), tenants=placed, intent=Intent()
            )
        except InfeasibleError:
            continue
        placed.append(read_guest(apply_plan(doc, plan), source=f"t{i}.xml"))
    return placed


def cases(host: Host, tenants: list[GuestSpec]) -> Iterator[tuple[str, GuestSpec, Plan]]:
    """(kind, the guest as written, its plan) for every vCPU count and intent: ``fresh``, ``re-planned``
    (the kept shape), ``hook`` (an incoming guest with its own topology)."""
    for n in range(1, 18):
        for intent in INTENTS:
            own = [f"<cpu><topology sockets='1' dies='1' cores='{n}' threads='1'/></cpu>"]
            if n % 2 == 0:
                own.append(f"<cpu><topology sockets='1' dies='1' cores='{n // 2}' threads='2'/></cpu>")
            try:
                doc = domain("g", n)
                plan = plan_guest(
                    host=host, guest=read_guest(doc, source="g.xml"), tenants=tenants, intent=intent
                )
                doc = apply_plan(doc, plan)
                yield "fresh", read_guest(doc, source="g.xml"), plan
                again = plan_guest(
                    host=host, guest=read_guest(doc, source="g.xml"), tenants=tenants, intent=intent
                )
                yield "re-planned", read_guest(apply_plan(doc, again), source="g.xml"), again
                for topology in own:
                    doc = domain("g", n, topology)
                    hook = plan_guest(host=host, guest=read_guest(doc, source="g.xml"), tenants=tenants,
                                      intent=intent, keep_abi=True)  # fmt: skip
                    yield "hook", read_guest(apply_plan(doc, hook), source="g.xml"), hook
            except InfeasibleError:
                continue


def main() -> int:
    counts: dict[str, list[int]] = {}
    for name in NAMED_HOSTS:
        host = host_named(name)
        for tenants in ([], tenants_of(host, name, 6)):
            for kind, guest, plan in cases(host, tenants):
                found = bool(run_rules(host, (guest,), tenants=tenants, select=frozenset({"VT109"})))
                lie = not truthful(host, guest)
                warned = any(n.level is Level.WARNING and n.topic == "topology" for n in plan.notes)
                row = counts.setdefault(kind, [0, 0, 0, 0])
                for i, value in enumerate((1, found, lie, (found or lie) and not warned)):
                    row[i] += value
    print(f"{'plans':<11}{'judged':>8}{'VT109':>8}{'untrue':>8}{'unwarned':>10}")
    total = [sum(col) for col in zip(*counts.values(), strict=True)]
    for kind, row in [*counts.items(), ("all", total)]:
        print(f"{kind:<11}" + "".join(f"{v:>{w}}" for v, w in zip(row, (8, 8, 8, 10), strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
