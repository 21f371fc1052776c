"""Memory benchmark: a stream of large guests onto a 2-node host until memory, not CPUs, runs out.

The host (tests/sysfsgen.py) has 2 sockets = 2 NUMA nodes x 24 cores x 2 threads and 192 GiB per node;
the 1G variant also has 128 one-GiB pages per node. Each guest has 4 vCPUs and 32 GiB, so the CPUs would
hold 22 of them; memory holds far fewer. Every guest goes through the CLI as an operator would run it:
``vmtune apply gN.xml --sysfs HOST --domains OUT -o OUT`` (the guests placed so far are the tenants), a
refusal (exit 3) ends the stream. Then ``vmtune check OUT`` runs VT206, and the table prints, per node,
what the placed guests commit against what the node holds for guests (``core.ledger.memory``).

Run: ``.venv/bin/python bench/memory.py [--guests N]``; exit 1 when a node is over capacity or VT206 fires.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sysfsgen import HostSpec, write_sysfs  # noqa: E402  (tests/ is not a package)
from vmtune.cli.app import main  # noqa: E402
from vmtune.core.ledger.memory import memory_book  # noqa: E402
from vmtune.service import HostSource, load_host, load_tenants  # noqa: E402
from vmtune.units import GIB, PAGE_1G, fmt_kib_brief  # noqa: E402

NODE_GIB = 192
GUEST_GIB = 32
PAGES_1G = 128


def _host(root: Path, pages: bool) -> Path:
    spec = HostSpec(
        name="mem-2n",
        sockets=2,
        cores_per_node=24,
        threads_per_core=2,
        l3_cores=24,
        mem_per_node_kib=NODE_GIB * GIB,
        hugepages={PAGE_1G: (PAGES_1G, PAGES_1G)} if pages else {},
    )
    write_sysfs(spec, root)
    return root


def _guest(name: str) -> str:
    return (
        f"<domain type='kvm'><name>{name}</name><memory unit='GiB'>{GUEST_GIB}</memory>"
        "<vcpu>4</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os></domain>\n"
    )


def _quiet(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


def run(work: Path, *, pages: bool, limit: int) -> tuple[list[str], bool]:
    """Stream guests onto one host; (table rows, all nodes within capacity and no VT206)."""
    host_dir = _host(work / "host", pages)
    out = work / "out"
    out.mkdir()
    extra = ["--hugepages", "1G"] if pages else []
    placed, refusal = 0, ""
    for i in range(limit):
        src = work / f"g{i:02d}.xml"
        src.write_text(_guest(f"g{i:02d}"))
        code, text = _quiet(["apply", str(src), "--sysfs", str(host_dir), "--domains", str(out),
                             "-o", str(out), *extra])  # fmt: skip
        if code != 0:
            refusal = next((ln for ln in text.splitlines() if "needs" in ln), text.strip()[-200:])
            break
        placed += 1
    code, text = _quiet(["check", str(out), "--sysfs", str(host_dir), "--select", "VT206"])
    vt206 = text.count("VT206")
    host = load_host(HostSource(sysfs=host_dir), libvirt=lambda uri: sys.exit(f"no libvirt: {uri}"))
    book = memory_book(host, load_tenants(out), None)
    label = "1G pages" if pages else "normal pages"
    rows, over = [], 0
    for room in book.nodes:
        if pages:
            page = room.page(PAGE_1G)
            committed, capacity = (page.committed, page.total) if page else (0, 0)
            cell = f"{committed} / {capacity} pages"
        else:
            committed, capacity = room.committed_kib, room.capacity_kib or 0
            cell = f"{fmt_kib_brief(committed)} / {fmt_kib_brief(capacity)}"
        over += committed > capacity
        rows.append(f"| {label} | {placed} | node {room.node} | {cell} | {vt206} |")
    print(f"{label}: {placed} guests placed; refused next: {refusal}", file=sys.stderr)
    print(f"{label}: nodes over capacity: {over}", file=sys.stderr)
    return rows, over == 0 and vt206 == 0


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=30, help="at most this many guests per stream")
    args = parser.parse_args()
    print("| backing | placed | node | committed / capacity | VT206 |")
    print("|---|---|---|---|---|")
    ok = True
    for pages in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            rows, fine = run(Path(tmp), pages=pages, limit=args.guests)
        print("\n".join(rows))
        ok = ok and fine
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(cli())
