"""Benchmark: `vmtune plan --sysfs` on an 896-CPU host, from a snapshot archive vs. the same tree as a folder.

Writes an 896-CPU host (tests/sysfsgen.py: 8 sockets x 2 nodes x 28 cores x 2 threads, interleaved
siblings) into a temp dir, snapshots it with `vmtune host snapshot`, then times whole `vmtune plan`
processes on tests/data/domains/linux-server.xml with ``--sysfs FOLDER`` and ``--sysfs ARCHIVE``, with the
interpreter that runs this script. On a shared machine CPU time (user + sys of the child) is the steadier
figure; both are printed (median of the runs). Then one in-process split of reading the archive.

    .venv/bin/python bench/snapshot_read.py [--runs 7]

Exit status 1 when the archive's median CPU time is over twice the folder's.
"""

from __future__ import annotations

import argparse
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
from vmtune.adapters.snapshot import read_snapshot  # noqa: E402
from vmtune.adapters.sysfs import read_sysfs  # noqa: E402

HOST = sysfsgen.HostSpec(name="huge-896", sockets=8, nodes_per_socket=2, cores_per_node=28,
                         threads_per_core=2, sibling_numbering="interleaved", l3_cores=14,
                         l3_kib=20480)  # fmt: skip
DOMAIN = REPO / "tests" / "data" / "domains" / "linux-server.xml"


def time_plan(sysfs: Path, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `vmtune plan --sysfs SYSFS DOMAIN`."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "100", "NO_COLOR": "1"}
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "vmtune", "plan", "--sysfs", str(sysfs), str(DOMAIN)],
                              env=env, capture_output=True, check=False)  # fmt: skip
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode not in (0, 3):
            raise SystemExit(f"vmtune plan --sysfs {sysfs} exited {proc.returncode}: {proc.stderr.decode()}")
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        root, snap = Path(tmp) / "huge-896", Path(tmp) / "huge-896.tar.gz"
        sysfsgen.write_sysfs(HOST, root)
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        subprocess.run([sys.executable, "-m", "vmtune", "host", "snapshot", str(snap), "--sysfs", str(root)],
                       env=env, check=True, capture_output=True)  # fmt: skip
        folder = time_plan(root, runs)
        archive = time_plan(snap, runs)
        start = time.perf_counter()
        tree = read_snapshot(snap).tree
        parsed = time.perf_counter()
        read_sysfs(snap, tree=tree)
        done = time.perf_counter()
        print(
            f"896 CPUs, {snap.stat().st_size // 1024} KiB archive, {len(tree.files)} files; median of {runs}:"
        )
        print("| --sysfs | wall s | CPU s |\n|---|---|---|")
        print(f"| folder | {folder[0]:.2f} | {folder[1]:.2f} |")
        print(f"| archive | {archive[0]:.2f} | {archive[1]:.2f} |")
        print(f"archive/folder CPU: {archive[1] / folder[1]:.2f}x; in process: inflate+parse+verify "
              f"{parsed - start:.3f} s, read topology {done - parsed:.3f} s")  # fmt: skip
    return 0 if archive[1] <= 2 * folder[1] else 1


if __name__ == "__main__":
    sys.exit(main())
