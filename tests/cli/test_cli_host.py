"""`vmtune host` end to end on named hosts: goldens of the tree, JSON and map; tenants; bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from testutil import GOLDEN, REPO, check_golden, host_root, run
from vmtune.cpuset import CpuSet

GOLDEN_HOSTS = ("dual-skylake-ht-interleaved", "snc2-xeon", "hybrid-pe")
TREE_ONLY_HOSTS = ("phytium-s2500", "offline-cpus", "memoryless-node")


@pytest.fixture
def host_out(
    hosts_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., str]:
    """``host_out(name, *args)``: stdout of ``vmtune host --sysfs NAME ARGS`` run next to the host's tree."""

    def call(name: str, *args: str) -> str:
        root = host_root(name, hosts_tmp)
        code, out, _err = run(["host", "--sysfs", name, *args], capsys, monkeypatch, root.parent)
        assert code == 0
        return out

    return call


TENANTS = {
    # dual-skylake-ht-interleaved: core c = CPUs {c, c+20}; web owns whole cores 0-1, db cores 2-3 plus an
    # emulator CPU, and noisy/batch split core 7 (CPUs 7 and 27) between them.
    "web": ("0-1,20-21", None),
    "db": ("2-3,22-23", "4"),
    "noisy": ("7", None),
    "batch": ("27", None),
}


def domain_xml(name: str, cpus: str, emulator: str | None) -> str:

    ids = list(CpuSet.parse(cpus))
    pins = "".join(f"<vcpupin vcpu='{i}' cpuset='{c}'/>" for i, c in enumerate(ids))
    emu = f"<emulatorpin cpuset='{emulator}'/>" if emulator else ""
    return (
        f"<domain type='kvm'><name>{name}</name><memory unit='GiB'>4</memory><vcpu>{len(ids)}</vcpu>"
        f"<cputune>{pins}{emu}</cputune><os><type arch='x86_64'>hvm</type></os></domain>\n"
    )


@pytest.fixture
def domains_dir(tmp_path: Path) -> Path:
    d = tmp_path / "domains"
    d.mkdir()
    for name, (cpus, emu) in TENANTS.items():
        (d / f"{name}.xml").write_text(domain_xml(name, cpus, emu))
    (d / "notes.txt").write_text("not a domain\n")
    return d


@pytest.mark.parametrize("name", GOLDEN_HOSTS + TREE_ONLY_HOSTS)
def test_tree_golden(name: str, host_out: Callable[..., str], regen: bool) -> None:
    out = host_out(name)
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "\x1b[" not in out
    check_golden(GOLDEN / "host" / f"{name}.txt", out, regen)


@pytest.mark.parametrize("name", GOLDEN_HOSTS)
def test_json_golden(name: str, host_out: Callable[..., str], regen: bool) -> None:
    out = host_out(name, "--json")
    doc = json.loads(out)
    assert set(doc["summary"]) == {
        "sockets", "numa_nodes", "cores", "threads", "threads_per_core", "l2_groups", "l3_groups",
    }  # fmt: skip
    assert all(type(v) is int for v in doc["summary"].values())
    assert list(doc)[:2] == ["host", "summary"]
    assert "owners" not in doc
    check_golden(GOLDEN / "host" / f"{name}.json", out, regen)


@pytest.mark.parametrize("name", GOLDEN_HOSTS)
def test_map_golden(name: str, host_out: Callable[..., str], regen: bool) -> None:
    out = host_out(name, "--map", "--reserve", "0")
    assert "# reserved" in out
    check_golden(GOLDEN / "host" / f"{name}--map.txt", out, regen)


def test_map_with_tenants(domains_dir: Path, host_out: Callable[..., str], regen: bool) -> None:
    name = "dual-skylake-ht-interleaved"
    out = host_out(name, "--map", "--domains", str(domains_dir), "--reserve", "19,39")
    for tenant in TENANTS:
        assert f" {tenant}: " in out, tenant
    assert "A batch: 1 CPU: 27" in out
    assert "B db: 5 CPUs: 2-4,22-23" in out
    assert "^ shared cores, SMT siblings in different domains: 7,27 (batch+noisy)" in out
    check_golden(GOLDEN / "host" / f"{name}--map-tenants.txt", out, regen)


def test_json_owners_with_domains(domains_dir: Path, host_out: Callable[..., str]) -> None:
    out = host_out("dual-skylake-ht-interleaved", "--json", "--domains", str(domains_dir))
    owners = json.loads(out)["owners"]
    assert len(owners) == 40
    assert (owners["0"], owners["4"], owners["7"], owners["27"], owners["5"]) == (
        "web",
        "db",
        "noisy",
        "batch",
        "free",
    )


# -- bad input: exit 2, one line naming the culprit, no traceback --------------------------------------


def _bad(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    garbage = tmp_path / "caps.xml"
    garbage.write_text("<capabilities><host><cpu>garbage\n")
    notgz = tmp_path / "snap.tar.gz"
    notgz.write_bytes(b"this is not a gzip file\n")
    missing = tmp_path / "no-such-root"
    return {
        "missing sysfs root": (["host", "--sysfs", str(missing)], str(missing)),
        "garbage capabilities": (["host", "--capabilities", str(garbage)], str(garbage)),
        "not a snapshot": (["host", "--sysfs", str(notgz)], str(notgz)),
        "missing domains dir": (["host", "--sysfs", "/", "--domains", str(missing)], str(missing)),
        "bad reserve": (["host", "--reserve", "3-1"], "--reserve"),
        "json and map": (["host", "--json", "--map"], "--json"),
        "snapshot of missing root": (
            ["host", "snapshot", str(tmp_path / "o.tar.gz"), "--sysfs", str(missing)], str(missing)
        ),
    }  # fmt: skip


@pytest.mark.parametrize(
    "case",
    ["missing sysfs root", "garbage capabilities", "not a snapshot", "missing domains dir", "bad reserve",
     "json and map", "snapshot of missing root"],
)  # fmt: skip
def test_bad_input_exit_2(case: str, tmp_path: Path) -> None:
    if case == "garbage capabilities":
        pytest.importorskip("vmtune.xmlmap.capabilities")
    args, culprit = _bad(tmp_path)[case]
    proc = subprocess.run(
        [sys.executable, "-m", "vmtune", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert culprit in lines[0]
    assert "Traceback" not in proc.stderr


def test_group_default_and_subcommand_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, _ = run(["host", "--help"], capsys, monkeypatch, tmp_path)
    assert code == 0
    assert "snapshot OUT.tar.gz" in out and "--map" in out and "--domains" in out
    code, out, _ = run(["host", "snapshot", "--help"], capsys, monkeypatch, tmp_path)
    assert code == 0 and "--sysfs" in out
    code, _, err = run(["host", "nonsense"], capsys, monkeypatch, tmp_path)
    assert code == 2 and "nonsense" in err


def test_connect_tenants_are_the_connections_domains(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """libvirt's test driver (no daemon): its one defined domain, unpinned, shows as a floating tenant."""
    pytest.importorskip("libvirt")
    code, out, _ = run(["host", "--connect", "test:///default", "--map"], capsys, monkeypatch, tmp_path)
    assert code == 0
    assert "A test: floating (no pinned CPUs)" in out
    code, out, _ = run(["host", "--connect", "test:///default", "--json"], capsys, monkeypatch, tmp_path)
    assert code == 0
    owners = set(json.loads(out)["owners"].values())
    assert "free" in owners and owners <= {"free", "reserved", "isolated"}  # a floating guest takes none
