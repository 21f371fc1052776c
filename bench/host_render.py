"""Benchmark: `vmtune host` end to end on a 960-CPU host (target: < 0.5 s per view).

Writes the named host ``huge-960`` (tests/sysfsgen.py: 8 sockets x 2 nodes x 30 cores x 2 threads,
interleaved siblings, 3 L3 groups per node) into a temp dir, then times whole processes, from exec to
exit, with the same interpreter that runs this script (the venv's): ``vmtune host`` (tree), ``--json``
and ``--map`` (with 24 pinned tenant domains). Several runs each; the table shows the median and the
fastest. A second table splits one in-process run into reading sysfs, building the Host and rendering,
so a slow total can be pinned on the right layer.

    .venv/bin/python bench/host_render.py [--runs 7] [--host huge-960]

Prints a markdown table (for the README). Exit status 1 when a median misses the target.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

import sysfsgen  # noqa: E402  (tests/ helper, importable once the path is set)

TARGET_S = 0.5
TENANTS = 24


def write_domains(directory: Path, cores: int, total_cores: int) -> None:
    """TENANTS domains of 8 whole cores each (interleaved siblings c and c+total_cores)."""
    directory.mkdir()
    for i in range(TENANTS):
        cpus = [c for core in range(i * cores, (i + 1) * cores) for c in (core, core + total_cores)]
        pins = "".join(f"<vcpupin vcpu='{v}' cpuset='{c}'/>" for v, c in enumerate(cpus))
        (directory / f"vm{i:02d}.xml").write_text(
            f"<domain type='kvm'><name>vm{i:02d}</name><memory unit='GiB'>8</memory><vcpu>{len(cpus)}</vcpu>"
            f"<cputune>{pins}</cputune><os><type arch='x86_64'>hvm</type></os></domain>\n"
        )


def time_process(args: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock seconds and CPU seconds (user + sys of the child) per run. On a shared machine the CPU
    time is the steadier number: wall time also counts the time the child waited for a core."""
    times, cpu = [], []
    env = {"COLUMNS": "100", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:  # to time a source tree with another interpreter (e.g. another typer)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "vmtune", *args], capture_output=True, env=env, check=False
        )
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"vmtune {' '.join(args)} failed: {proc.stderr.decode()[-400:]}")
    return times, cpu


def split_in_process(root: Path, domains: Path) -> list[tuple[str, float]]:
    t0 = time.perf_counter()
    from vmtune.adapters.sysfs import read_sysfs
    from vmtune.render.console import make_console
    from vmtune.render.host import print_host
    from vmtune.render.hostjson import host_json
    from vmtune.render.hostmap import print_map

    t1 = time.perf_counter()
    host = read_sysfs(root)
    t2 = time.perf_counter()
    print_host(make_console(file=io.StringIO(), width=100), host)
    t3 = time.perf_counter()
    import json

    json.dumps(host_json(host), indent=2)
    t4 = time.perf_counter()
    from vmtune.xmlmap.guest import read_guest

    tenants = [read_guest(p.read_bytes(), source=str(p)) for p in sorted(domains.glob("*.xml"))]
    t5 = time.perf_counter()
    print_map(make_console(file=io.StringIO(), width=100), host, tenants)
    t6 = time.perf_counter()
    return [
        ("import reader + renderers", t1 - t0),
        (f"read_sysfs ({len(host.cpus)} CPUs)", t2 - t1),
        ("render tree", t3 - t2),
        ("render JSON", t4 - t3),
        (f"read {len(tenants)} domain XMLs", t5 - t4),
        ("render map", t6 - t5),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--host", default="huge-960")
    args = parser.parse_args()
    spec = sysfsgen.NAMED_HOSTS[args.host]
    with tempfile.TemporaryDirectory(prefix="vmtune-bench-") as tmp:
        root = Path(tmp) / args.host
        sysfsgen.write_sysfs(spec, root)
        domains = Path(tmp) / "domains"
        total_cores = spec.sockets * spec.nodes_per_socket * spec.cores_per_node
        write_domains(domains, 8, total_cores)
        views = [
            ("tree", ["host", "--sysfs", str(root)]),
            ("--json", ["host", "--sysfs", str(root), "--json"]),
            (
                f"--map --domains ({TENANTS} tenants)",
                ["host", "--sysfs", str(root), "--map", "--domains", str(domains)],
            ),
            ("baseline: vmtune --help", ["--help"]),
        ]
        print(f"`vmtune host` on {args.host} ({spec.cpu_count()} CPUs), {args.runs} runs each, "
              f"{sys.executable} (whole process)\n")  # fmt: skip
        load = os.getloadavg()[0]
        print(f"load average at start: {load:.2f} on {os.cpu_count()} CPUs\n")
        print("| view | median wall | fastest wall | median CPU (user+sys) | target (median wall) |")
        print("|---|---:|---:|---:|---|")
        ok = True
        for label, argv in views:
            times, cpu = time_process(argv, args.runs)
            med = statistics.median(times)
            is_view = not label.startswith("baseline")
            verdict = ("ok" if med < TARGET_S else "MISSED") if is_view else ""
            ok = ok and (med < TARGET_S or not is_view)
            target = f"< {TARGET_S} s {verdict}" if is_view else ""
            print(
                f"| {label} | {med:.3f} s | {min(times):.3f} s | {statistics.median(cpu):.3f} s | {target} |"
            )
        print("\nOne in-process run, split by layer:\n")
        print("| step | time |")
        print("|---|---:|")
        for step, seconds in split_in_process(root, domains):
            print(f"| {step} | {seconds * 1000:.0f} ms |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
