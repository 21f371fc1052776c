"""The host tree, JSON and map renderers on Host objects from the test host factory, plus ownership."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hosts import host_of
from sysfsgen import HostSpec, NodeMem, parse_cpulist
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.guest import GuestSpec, VcpuPin
from vmtune.core.ledger.ownership import Owner, clashes, cpu_owners, owner_tenants, shared_cores, unknown_pins
from vmtune.core.topology.model import Host, Socket
from vmtune.cpuset import CpuSet
from vmtune.render.console import make_console
from vmtune.render.host import print_host
from vmtune.render.hostjson import dumps, host_json
from vmtune.render.hostmap import print_map
from vmtune.render.hostview import CoreRun, Item, SocketBox, build_view
from vmtune.units import fmt_kib


def make_host(
    *,
    sockets: int = 1,
    nodes_per_socket: int = 1,
    cores_per_node: int = 4,
    threads: int = 1,
    interleaved: bool = True,
    l3_cores: int = 0,
    l2_cores: int = 1,
    offline: tuple[int, ...] = (),
    isolated: str = "",
    cpuless_nodes: int = 0,
    name: str = "model-host",
) -> Host:
    """A regular host: node n holds cores n*cores_per_node...; siblings interleaved or adjacent. CPU nodes
    have 16 GiB (12 free, 2M pages 500/512 free) and sit 21 apart; CPU-less nodes after them have 64 GiB,
    all free, and are 40 from every other node."""
    cpu_nodes = sockets * nodes_per_socket
    node_ids = range(cpu_nodes + cpuless_nodes)
    far = [21 if n < cpu_nodes else 40 for n in node_ids]
    spec = HostSpec(
        name=name,
        sockets=sockets,
        nodes_per_socket=nodes_per_socket,
        cores_per_node=cores_per_node,
        threads_per_core=threads,
        sibling_numbering="interleaved" if interleaved else "adjacent",
        l2_cores=l2_cores,
        l3_cores=l3_cores,
        l2_kib=16384,
        l3_kib=24576,
        node_mem={n: NodeMem(16 << 20, 12 << 20, {2048: (512, 500)}) for n in range(cpu_nodes)}
        | {n: NodeMem(64 << 20, 64 << 20, {}) for n in node_ids[cpu_nodes:]},
        cpuless_nodes=tuple(node_ids[cpu_nodes:]),
        distances=tuple(tuple(10 if m == n else far[n] for m in node_ids) for n in node_ids),
        offline=offline,
        isolated=parse_cpulist(isolated),
        vendor="Intel",
    )
    return host_of(spec)


def guest(name: str, cpus: str, emulator: str | None = None) -> GuestSpec:
    pins = tuple(VcpuPin(vcpu=i, cpus=CpuSet([c])) for i, c in enumerate(CpuSet.parse(cpus)))
    return GuestSpec(
        name=name,
        source=f"{name}.xml",
        vcpus=len(pins),
        vcpupins=pins,
        emulatorpin=CpuSet.parse(emulator) if emulator else None,
    )


def render(fn: object, *args: object) -> str:
    buf = io.StringIO()
    console = make_console(file=buf, width=100)
    fn(console, *args)  # type: ignore[operator]
    return buf.getvalue()


def test_model_host_is_consistent() -> None:
    host = make_host(sockets=2, cores_per_node=4, threads=2, l3_cores=4)
    s = host.summary()
    assert (s.sockets, s.numa_nodes, s.cores, s.threads, s.threads_per_core) == (2, 2, 8, 16, 2)
    assert (s.cache_groups[2], s.cache_groups[3]) == (8, 2)
    assert host.siblings(0) == CpuSet([0, 8])


def test_tree_shows_every_level() -> None:
    host = make_host(sockets=2, cores_per_node=4, threads=2, l3_cores=4)
    out = render(print_host, host)
    assert "socket 0" in out and "socket 1" in out
    assert "node 0 · 8 CPUs · 16 GiB (12 GiB free) · hugepages 2M 500/512 free" in out
    assert "L3 · 24 MiB · 4 cores" in out
    assert "cores 0-3 (2 threads each): 0-3,8-11" in out
    assert "distances" in out


def test_identical_l3_groups_fold_and_keep_their_cpus_apart() -> None:
    host = make_host(cores_per_node=30, threads=2, l3_cores=10)
    out = render(print_host, host)
    assert "L3 ×3 · 24 MiB · 10 cores each" in out
    assert "cores 0-29 (2 threads each): 0-9,30-39 | 10-19,40-49 | 20-29,50-59" in out


def test_shared_l2_gets_a_box_private_l2_does_not() -> None:
    shared = render(print_host, make_host(cores_per_node=8, l2_cores=4))
    private = render(print_host, make_host(cores_per_node=8, l2_cores=1))
    assert "L2 ×2 · 16 MiB · 4 cores each" in shared
    assert "cores 0-7 (1 thread each): 0-3 | 4-7" in shared
    assert "L2" not in private.split("\n", 2)[2]  # only the header mentions L2


def test_huge_host_fits_a_screen() -> None:
    host = make_host(sockets=8, nodes_per_socket=2, cores_per_node=30, threads=2, l3_cores=10)
    assert len(host.online) == 960
    out = render(print_host, host)
    lines = out.splitlines()
    assert len(lines) < 80, len(lines)
    assert max(len(line) for line in lines) <= 100
    assert "cores 0-29 (2 threads each): 0-9,480-489 | 10-19,490-499 | 20-29,500-509" in out


def test_offline_cpus_and_cpuless_nodes_are_shown() -> None:
    host = make_host(sockets=2, cores_per_node=2, threads=2, offline=(3,), cpuless_nodes=1)
    out = render(print_host, host)
    assert "offline 3" in out
    assert "node 2 · no CPUs · 64 GiB" in out
    # core 3 lost its sibling (cpu 3 offline, cpu 7 still online): its own line, 1 thread
    assert "core 3 (1 thread): 7" in out


def view_cpus(host: Host) -> CpuSet:
    """Every CPU the tree's core lines show."""

    def cpus(items: tuple[Item, ...]) -> CpuSet:
        out = CpuSet()
        for item in items:
            out = out | (item.cpus if isinstance(item, CoreRun) else cpus(item.children))
        return out

    seen = CpuSet()
    for box in build_view(host):
        nodes = box.nodes if isinstance(box, SocketBox) else (box,)
        seen = seen.union(*(cpus(nb.children) for nb in nodes))
    return seen


def map_cells(text: str) -> int:
    """Cells in the grid rows of a --map output (the part above the legend)."""
    grid = text.split("\nlegend:", maxsplit=1)[0]
    rows = [m.group(1) for m in re.finditer(r"^  +[\d,.-]+  (.*)$", grid, flags=re.MULTILINE)]
    return sum(len(row.replace(" ", "")) for row in rows)


@pytest.mark.parametrize(
    "shape",
    [
        {
            "sockets": 2,
            "nodes_per_socket": 2,
            "cores_per_node": 12,
            "threads": 2,
            "l3_cores": 4,
            "l2_cores": 2,
        },
        {"sockets": 1, "nodes_per_socket": 8, "cores_per_node": 8, "l2_cores": 4},
        {"sockets": 2, "cores_per_node": 3, "threads": 2, "offline": (1, 8), "cpuless_nodes": 2},
    ],
)
def test_view_folding_is_lossless(shape: dict[str, Any]) -> None:
    host = make_host(**shape)
    assert view_cpus(host) == host.online
    assert map_cells(render(print_map, host, [])) == len(host.cpus)


@pytest.mark.corpus
def test_every_corpus_machine_renders(corpora: Path) -> None:
    """44 real machines: tree and map fit 100 columns, the tree shows every online CPU, the map every CPU."""
    roots = sorted(p for p in (corpora / "sysfs").iterdir() if p.is_dir())
    assert len(roots) > 40
    for root in roots:
        host = read_sysfs(root)
        tree = render(print_host, host)
        grid = render(print_map, host, [])
        assert max(len(line) for line in (tree + grid).splitlines()) <= 100, root.name
        assert view_cpus(host) == host.online, root.name
        assert map_cells(grid) == len(host.cpus), root.name


def test_node_major_when_nodes_hold_sockets() -> None:
    # 4 sockets of 2 cores, 2 sockets per node (model it as 2 nodes of 4 cores, then split packages)
    base = make_host(sockets=2, cores_per_node=4)
    cpus = tuple(replace(c, socket=c.core // 2, package_id=c.core // 2) for c in base.cpus)
    cores = tuple(replace(c, socket=c.index // 2) for c in base.cores)
    socks = tuple(
        Socket(index=s, package_id=s, cpus=CpuSet(c.id for c in cpus if c.socket == s)) for s in range(4)
    )
    host = replace(base, cpus=cpus, cores=cores, sockets=socks)
    view = build_view(host)
    assert [type(b).__name__ for b in view] == ["NodeBox", "NodeBox"]
    out = render(print_host, host)
    assert "node 0 · 4 CPUs" in out
    assert "sockets 0-1 ×2 · 2 cores each" in out
    assert "cores 0-3 (1 thread each): 0-1 | 2-3" in out  # folded sockets keep their CPUs apart


@pytest.mark.parametrize(
    ("kib", "text"), [(512, "512 KiB"), (1280, "1.25 MiB"), (14080, "13.75 MiB"), (100 << 20, "100 GiB")]
)
def test_fmt_kib(kib: int, text: str) -> None:
    assert fmt_kib(kib) == text


# -- ownership ---------------------------------------------------------------------------------------


def test_owner_precedence() -> None:
    host = make_host(cores_per_node=4, threads=2, offline=(7,), isolated="4-7")
    tenants = [guest("web", "0-1", emulator="7"), guest("db", "1,4")]
    owners = cpu_owners(host, tenants, reserved=CpuSet([2, 6]))
    assert owners[0] == "web"
    assert owners[1] == "db+web"  # both pin cpu 1: shown, not hidden
    assert owners[2] == Owner.RESERVED
    # isolcpus=4-7: like the planner's ledger, every CPU outside it is housekeeping, never a guest's vCPU
    assert owners[3] == Owner.RESERVED
    assert owners[4] == "db"  # a tenant on an isolated CPU is that tenant's
    assert owners[5] == Owner.ISOLATED
    assert owners[6] == Owner.RESERVED  # reserved wins over isolated
    assert owners[7] == Owner.OFFLINE  # offline wins over the stale emulatorpin
    assert set(owners) == {c.id for c in host.cpus}
    assert owner_tenants("db+web", ["db", "web"]) == ("db", "web")
    assert owner_tenants("free", ["db"]) == ()


def test_clashes_shared_cores_unknown_pins() -> None:
    host = make_host(cores_per_node=4, threads=2, offline=(7,))
    tenants = [guest("a", "0,1"), guest("b", "1,4,7,99"), guest("c", "2,6")]
    assert [(c.cpu, c.tenants) for c in clashes(host, tenants)] == [(1, ("a", "b"))]
    # core 0 = {0,4}: a and b; core 1 = {1,5}: a and b on cpu 1; core 2 = {2,6}: c alone
    assert [(s.core, s.tenants) for s in shared_cores(host, tenants)] == [(0, ("a", "b")), (1, ("a", "b"))]
    assert unknown_pins(host, tenants) == {"b": CpuSet([7, 99])}


def test_floating_tenant_owns_nothing() -> None:
    host = make_host()
    floating = GuestSpec(name="float", source="f.xml", vcpus=4)
    # no --reserve: the planner's default reserve (first core of the node) and nothing for the tenant
    assert set(cpu_owners(host, [floating]).values()) == {Owner.FREE, Owner.RESERVED}
    assert set(cpu_owners(host, [floating], CpuSet([3])).values()) == {Owner.FREE, Owner.RESERVED}


# -- JSON and map ------------------------------------------------------------------------------------


def test_json_summary_ints_and_canonical_sets() -> None:
    host = make_host(sockets=2, cores_per_node=2, threads=2, l3_cores=2)
    doc = json.loads(json.dumps(host_json(host)))
    assert doc["summary"] == {
        "sockets": 2,
        "numa_nodes": 2,
        "cores": 4,
        "threads": 8,
        "threads_per_core": 2,
        "l2_groups": 4,
        "l3_groups": 2,
    }
    assert all(type(v) is int for v in doc["summary"].values())
    assert doc["nodes"][0]["cpus"] == "0-1,4-5"
    assert doc["nodes"][0]["distances"] == {"0": 10, "1": 21}
    assert doc["cpus"][4] == {
        "id": 4,
        "online": True,
        "socket": 0,
        "node": 0,
        "core": 0,
        "package_id": 0,
        "die_id": None,
        "cluster_id": None,
        "core_id": 0,
        "capacity": None,
        "l2": 0,
        "l3": 4,
    }
    assert "owners" not in doc


def test_json_owners_when_tenants_given() -> None:
    host = make_host(cores_per_node=2)
    doc = host_json(host, owners=cpu_owners(host, [guest("vm", "1")]))
    assert doc["owners"] == {"0": "reserved", "1": "vm"}  # cpu 0: the default reserve, as vmtune plan


def test_map_shows_each_tenant_and_shared_cores() -> None:
    host = make_host(cores_per_node=8, threads=2, offline=(15,), isolated="12-14")
    tenants = [guest("alpha", "0-1,8-9"), guest("beta", "2,11"), guest("gamma", "3")]
    out = render(print_map, host, tenants, CpuSet([7]))
    for name in ("alpha", "beta", "gamma", "free", "reserved", "isolated", "offline"):
        assert name in out
    # beta on cpu 11 and gamma on cpu 3 share core 3 = {3, 11}
    assert "shared core" in out
    assert "beta+gamma" in out or "3,11" in out


def test_json_text_is_valid_and_line_per_item() -> None:
    host = make_host(sockets=2, cores_per_node=2, threads=2, l3_cores=2, offline=(7,))
    doc = host_json(host, owners=cpu_owners(host, [guest("vm", "0-1")]))
    text = dumps(doc)
    assert json.loads(text) == json.loads(json.dumps(doc))
    cpu_lines = [
        line for line in text.splitlines() if line.lstrip().startswith('{"id": ') and '"online"' in line
    ]
    assert len(cpu_lines) == len(host.cpus)
    assert dumps({"empty": [], "x": 1}) == '{\n  "empty": [],\n  "x": 1\n}\n'


# -- console -----------------------------------------------------------------------------------------


def test_console_plain_for_pipes_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    host = make_host(cores_per_node=4, threads=2)
    tenants = [guest("vm", "0-1")]

    pipe = io.StringIO()
    console = make_console(file=pipe)
    assert console.width == 100  # not rich's 80 for pipes
    print_map(console, host, tenants)
    assert "\x1b[" not in pipe.getvalue()

    monkeypatch.setenv("COLUMNS", "120")
    assert make_console(file=io.StringIO()).width == 120

    monkeypatch.setenv("FORCE_COLOR", "1")
    colour = io.StringIO()
    print_map(make_console(file=colour), host, tenants)
    assert "\x1b[" in colour.getvalue()  # a terminal gets colours...
    monkeypatch.setenv("NO_COLOR", "1")
    mono = io.StringIO()
    print_map(make_console(file=mono), host, tenants)
    assert "\x1b[3" not in mono.getvalue() and "\x1b[4" not in mono.getvalue()  # ...NO_COLOR none of them
    assert "A vm: 2 CPUs: 0-1" in re.sub(r"\x1b\[[0-9;]*m", "", mono.getvalue())  # bold/underline may stay
