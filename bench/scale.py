"""Planning cost against guest size: must grow no worse than n log n in vCPUs and CPUs.

Part 1 plans one guest of 1024, 2048, 4096 and 8192 vCPUs (``plan_document``: read the XML, plan, write
every ``<vcpupin>``, serialize) on generated hosts: ``huge-960`` (960 CPUs, 16 nodes; ``--cpu-policy
shared``, the pool overcommitted) and ``huge-8192`` (the same shape at 32 sockets: 8192 CPUs, the
kernel's most, 64 nodes; shared, and dedicated with ``--reserve ''`` so 8192 vCPUs fit). The guest's
machine type is the unversioned ``q35`` and the domcapabilities say ``<vcpu max='8192'/>``: today's QEMU
stops at 4096 (``core.intent.bounds``), the bench measures the growth past it. ``growth`` is t(n) /
t(n/2): 2.0 is linear, about 2.2 is n log n, 4 quadratic. Times are process CPU time, the minimum of
``--runs`` (the machine is shared: the minimum is the steadiest figure).

Part 2 runs the libvirt hook's ``migrate begin`` (``vmtune.hook.run_hook``, against a generated
``huge-960`` sysfs tree) for the test guests and the widest guests the bounds allow, and prints the
longest time it held its lock (``hook_lock`` timed around its body). A test guest the host cannot hold
(hugepages it lacks) is left out.

Run: ``.venv/bin/python bench/scale.py [--runs 3] [--quick]`` (``--quick``: 1024 and 2048 vCPUs only,
the hook over the test guests only, on a committed 40-CPU tree).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import vmtune.hook  # noqa: E402
from sysfsgen import NAMED_HOSTS, write_capabilities, write_sysfs  # noqa: E402
from vmtune.adapters.hookenv import HookPaths  # noqa: E402
from vmtune.adapters.sysfs import read_sysfs  # noqa: E402
from vmtune.core.intent.model import CpuPolicy, Intent  # noqa: E402
from vmtune.core.topology.caps import HostCaps  # noqa: E402
from vmtune.core.topology.model import Host  # noqa: E402
from vmtune.cpuset import CpuSet  # noqa: E402
from vmtune.errors import VmtuneError  # noqa: E402
from vmtune.service import plan_document  # noqa: E402
from vmtune.xmlmap.capabilities import parse_capabilities  # noqa: E402

DOMAINS = ROOT / "tests" / "data" / "domains"
HOSTS = ROOT / "tests" / "data" / "hosts"
QUICK_HOST = "dual-skylake-ht-interleaved"
"""``--quick`` runs the hook on this committed tree: writing the 960-CPU tree takes minutes on a busy disk."""
SERVER = (DOMAINS / "linux-server.xml").read_text()
SIZES = (1024, 2048, 4096, 8192)
CAPS = HostCaps(max_vcpus=8192)
TARGET_S = 1.0
"""Planning one 8192-vCPU guest must take under a second."""


def _host(name: str, **scale: int) -> Host:
    """A generated host via its capabilities XML (the fast reader for thousands of CPUs)."""
    spec = dataclasses.replace(NAMED_HOSTS["huge-960"], name=name, **scale)  # type: ignore[arg-type]
    return parse_capabilities(write_capabilities(spec), name)


def _domain(vcpus: int, machine: str = "q35") -> bytes:
    return SERVER.replace("<vcpu>4</vcpu>", f"<vcpu>{vcpus}</vcpu>").replace("pc-q35-7.2", machine).encode()


def _seconds(work: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def planning_table(sizes: tuple[int, ...], runs: int) -> tuple[list[str], float]:
    """The markdown rows and the worst time at the largest size."""
    cases = [
        ("huge-960", _host("huge-960"), Intent(cpu_policy=CpuPolicy.SHARED)),
        ("huge-8192", _host("huge-8192", sockets=32, cores_per_node=64, l3_cores=16),
         Intent(cpu_policy=CpuPolicy.SHARED)),
        ("huge-8192", _host("huge-8192", sockets=32, cores_per_node=64, l3_cores=16),
         Intent(cpu_policy=CpuPolicy.DEDICATED, reserve=CpuSet())),
    ]  # fmt: skip
    rows = ["| host | policy | " + " | ".join(f"{n} vCPUs" for n in sizes) + " | growth per doubling |"]
    rows.append("|" + "---|" * (len(sizes) + 3))
    worst = 0.0
    for name, host, intent in cases:
        times = [
            _seconds(partial(plan_document, _domain(n), source="g.xml", host=host, tenants=(), intent=intent,
                             caps=CAPS), runs)
            for n in sizes
        ]  # fmt: skip
        worst = max(worst, times[-1])
        growth = ", ".join(f"{b / a:.2f}" for a, b in pairwise(times) if a > 0)
        cells = " | ".join(f"{t * 1000:.0f} ms" for t in times)
        rows.append(f"| {name} ({len(host.online)} CPUs) | {intent.cpu_policy} | {cells} | {growth} |")
    return rows, worst


@contextmanager
def _timed_lock(holds: list[float], real: Callable[[HookPaths], object]) -> Iterator[Callable[..., object]]:
    """``vmtune.hook.hook_lock`` replaced by one that records how long each hold lasted."""

    @contextmanager
    def timed(paths: HookPaths) -> Iterator[None]:
        with real(paths):  # type: ignore[attr-defined]
            start = time.perf_counter()
            try:
                yield
            finally:
                holds.append(time.perf_counter() - start)

    saved = vmtune.hook.hook_lock
    vmtune.hook.hook_lock = timed  # type: ignore[assignment]
    try:
        yield timed
    finally:
        vmtune.hook.hook_lock = saved


def _hook_guests(host: Host, quick: bool) -> Iterator[tuple[str, bytes]]:
    """(label, domain XML carrying vmtune intent) for the hook to re-plan."""
    wide = () if quick else (
        ("4096 vCPUs shared (q35-9.0)", _domain(4096, "pc-q35-9.0"), Intent(cpu_policy=CpuPolicy.SHARED)),
        ("900 vCPUs dedicated", _domain(900, "pc-q35-9.0"), Intent()),
        ("288 vCPUs dedicated (q35-7.2)", _domain(288), Intent()),
    )  # fmt: skip
    tests = tuple((p.name, p.read_bytes(), Intent()) for p in sorted(DOMAINS.glob("*.xml")))
    for label, raw, intent in (*tests, *wide):
        try:
            planned = plan_document(raw, source=label, host=host, tenants=(), intent=intent, caps=None)
        except VmtuneError:
            continue  # a guest this host cannot hold (its hugepages): the hook would not get to plan it
        yield label, planned.after


def hook_holds(quick: bool) -> list[tuple[str, float, int]]:
    """(guest, longest lock hold in seconds, exit code) of ``migrate begin`` for each guest."""
    out: list[tuple[str, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if quick:
            root = HOSTS / QUICK_HOST
        else:
            root = Path(tmp) / "sysfs"
            write_sysfs(NAMED_HOSTS["huge-960"], root)
        paths = HookPaths(status_dir=Path(tmp) / "status", state_dir=Path(tmp) / "state", sysfs_root=root,
                          domcaps=None)  # fmt: skip
        host = read_sysfs(root)
        holds: list[float] = []
        with _timed_lock(holds, vmtune.hook.hook_lock):
            for label, xml in _hook_guests(host, quick):
                holds.clear()
                code = vmtune.hook.run_hook([label, "migrate", "begin", "-"], io.BytesIO(xml), io.BytesIO(),
                                            io.StringIO(), paths=paths)  # fmt: skip
                out.append((label, max(holds, default=0.0), code))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = SIZES[:2] if args.quick else SIZES
    rows, worst = planning_table(sizes, args.runs)
    print("Planning time (plan_document, process CPU time, min of runs):\n")
    print("\n".join(rows))
    holds = hook_holds(args.quick)
    print(
        f"\nHook `migrate begin` lock hold ({QUICK_HOST if args.quick else 'huge-960'} sysfs, wall clock):\n"
    )
    print("| guest | lock held | exit |\n|---|---|---|")
    for label, held, code in holds:
        print(f"| {label} | {held * 1000:.0f} ms | {code} |")
    longest = max(h for _, h, _ in holds)
    print(f"\nworst lock hold: {longest * 1000:.0f} ms; largest size planned in {worst * 1000:.0f} ms")
    return 0 if args.quick or (worst < TARGET_S and longest < TARGET_S) else 1


if __name__ == "__main__":
    raise SystemExit(main())
