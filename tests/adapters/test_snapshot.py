"""`vmtune host snapshot`: what it captures, `--sysfs SNAPSHOT` reads the same host, verified against its
manifest (truncated or altered archives refused), safe extraction that leaves nothing behind."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from testutil import REPO, host_root, run
from vmtune.adapters.snapshot import MANIFEST, open_root, snapshot_members, write_snapshot
from vmtune.adapters.sysfs import read_sysfs
from vmtune.errors import InputError

TRUNCATED = "truncated or damaged host snapshot (the gzip stream ends early)"
ALTERED = "altered or incomplete host snapshot"
ROUND_TRIP_HOSTS = ("dual-skylake-ht-interleaved", "offline-cpus", "memoryless-node", "phytium-s2500")


@pytest.fixture(scope="module")
def hosts_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("snaphosts")


def _json(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cwd: Path
) -> dict:  # type: ignore[type-arg]
    code, out, err = run(args, capsys, monkeypatch, cwd)
    assert code == 0, err
    doc = json.loads(out)
    doc["host"].pop("name")
    return doc  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ROUND_TRIP_HOSTS)
def test_round_trip_same_json(
    name: str,
    hosts_tmp: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = host_root(name, hosts_tmp)
    snap = tmp_path / f"{name}.tar.gz"
    code, out, err = run(["host", "snapshot", str(snap), "--sysfs", str(root)], capsys, monkeypatch, tmp_path)
    assert code == 0 and out == ""
    assert f"wrote {snap}" in err
    original = _json(["host", "--sysfs", str(root), "--json"], capsys, monkeypatch, tmp_path)
    from_tar = _json(["host", "--sysfs", str(snap), "--json"], capsys, monkeypatch, tmp_path)
    assert from_tar == original
    assert from_tar["summary"] == original["summary"]
    # the extracted tarball is a sysfs root too
    extracted = tmp_path / "x"
    with tarfile.open(snap) as tar:
        # the extraction filter exists from Python 3.11.4 (Debian 12 ships 3.11.2)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(extracted, filter="data")
        else:
            tar.extractall(extracted)  # our own archive, written just above
    assert _json(["host", "--sysfs", str(extracted), "--json"], capsys, monkeypatch, tmp_path) == original


def test_snapshot_names_the_host_after_the_file(
    hosts_tmp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = host_root("hybrid-pe", hosts_tmp)
    write_snapshot(root, tmp_path / "pe.tar.gz")
    code, out, _ = run(["host", "--sysfs", "pe.tar.gz"], capsys, monkeypatch, tmp_path)
    assert code == 0
    assert out.startswith("pe.tar.gz")
    assert "vmtune-snapshot-" not in out  # the temp dir never shows


def test_snapshot_is_deterministic_and_only_topology(hosts_tmp: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(host_root("dual-skylake-ht-interleaved", hosts_tmp), root, symlinks=True)
    junk = [
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
        "sys/devices/system/cpu/cpu0/cache/index0/uevent",
        "sys/devices/system/cpu/vulnerabilities/meltdown",
        "proc/environ",
        "etc/hostname",
    ]
    for rel in junk:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("secret\n")
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    stats = write_snapshot(root, a)
    write_snapshot(root, b)
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        names = set(tar.getnames())
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    assert not names & set(junk)
    for needed in (
        "sys/devices/system/cpu/online",
        "sys/devices/system/cpu/cpu0/topology/core_cpus_list",
        "sys/devices/system/cpu/cpu0/cache/index3/shared_cpu_list",
        "sys/devices/system/node/node0/distance",
        "sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages",
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "proc/meminfo",
        "proc/cmdline",
    ):
        assert needed in names, needed
    assert stats.files == sum(1 for n in names if (root / n).is_file() and not (root / n).is_symlink())


def test_node_cpu_links_survive(hosts_tmp: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(host_root("small-2cpu", hosts_tmp), root, symlinks=True)
    node0 = root / "sys/devices/system/node/node0"
    for f in ("cpulist", "cpumap"):
        (node0 / f).unlink(missing_ok=True)
    for cpu in (0, 1):
        link = node0 / f"cpu{cpu}"
        if not link.is_symlink():
            link.symlink_to(f"../../cpu/cpu{cpu}")
    links = {name for name, _path, is_link in snapshot_members(root) if is_link}
    assert links == {"sys/devices/system/node/node0/cpu0", "sys/devices/system/node/node0/cpu1"}
    write_snapshot(root, tmp_path / "s.tar.gz")
    with open_root(tmp_path / "s.tar.gz") as extracted:
        assert (extracted / "sys/devices/system/node/node0/cpu1").is_symlink()
        assert read_sysfs(extracted).summary() == read_sysfs(root).summary()


def test_live_machine_round_trip(tmp_path: Path) -> None:
    live = Path("/")
    if not (live / "sys/devices/system/cpu/online").exists():
        pytest.skip("no sysfs here")
    write_snapshot(live, tmp_path / "me.tar.gz")
    with open_root(tmp_path / "me.tar.gz") as root:
        assert read_sysfs(root).summary() == read_sysfs(live).summary()


def _tar(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path = tmp_path / "evil.tar.gz"
    path.write_bytes(buf.getvalue())
    return path


def test_hostile_snapshots_are_refused(tmp_path: Path) -> None:
    escape = tarfile.TarInfo("../escaped")
    evil = _tar(tmp_path, [(escape, b"x")])
    with pytest.raises(InputError, match=r"evil\.tar\.gz"), open_root(evil):
        pass
    assert not (tmp_path.parent / "escaped").exists()
    link = tarfile.TarInfo("sys/devices/system/cpu/online")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/shadow"
    with pytest.raises(InputError, match=r"evil\.tar\.gz"), open_root(_tar(tmp_path, [(link, b"")])):
        pass
    not_sysfs = _tar(tmp_path, [(tarfile.TarInfo("README"), b"hello")])
    with pytest.raises(InputError, match="no sys/devices/system/cpu"), open_root(not_sysfs):
        pass


def test_snapshot_of_a_non_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a sysfs root"):
        write_snapshot(tmp_path, tmp_path / "o.tar.gz")
    assert not (tmp_path / "o.tar.gz").exists()


def test_a_retarred_tree_is_accepted(hosts_tmp: Path, tmp_path: Path) -> None:
    """`tar czf snap.tar.gz -C DIR .` (names start with ./) reads like vmtune's own snapshot."""
    root = host_root("small-2cpu", hosts_tmp)
    snap = tmp_path / "retar.tar.gz"
    with tarfile.open(snap, "w:gz") as tar:
        tar.add(root, arcname=".")
    with open_root(snap) as extracted:
        assert read_sysfs(extracted).summary() == read_sysfs(root).summary()


def test_big_cpuinfo_is_cut_at_a_block_boundary(hosts_tmp: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(host_root("small-2cpu", hosts_tmp), root, symlinks=True)
    block = (
        "processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\n"
        + "flags\t\t: "
        + "x " * 400
        + "\n\n"
    )
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc/cpuinfo").write_text("".join(block.format(n=n) for n in range(960)))
    write_snapshot(root, tmp_path / "s.tar.gz")
    with open_root(tmp_path / "s.tar.gz") as extracted:
        data = (extracted / "proc/cpuinfo").read_bytes()
    assert 200 * 1024 < len(data) <= 256 * 1024
    assert data.startswith(b"processor\t: 0\n") and data.endswith(b"\n\n")


def test_probe_files_travel_with_the_snapshot(hosts_tmp: Path, tmp_path: Path) -> None:
    """plan/check --sysfs SNAPSHOT gate on the captured host's APICv, cgroup RT budget and PCI NUMA."""
    from vmtune.adapters.probes import probe_host_caps

    root = tmp_path / "root"
    shutil.copytree(host_root("small-2cpu", hosts_tmp), root, symlinks=True)
    files = {
        "sys/module/kvm_intel/parameters/enable_apicv": "N\n",
        "sys/module/kvm_intel/parameters/nested": "Y\n",  # not a probe: left out
        "sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us": "950000\n",
        "sys/fs/cgroup/cpu,cpuacct/machine.slice/cpu.rt_runtime_us": "0\n",
        "sys/devices/pci0000:00/0000:00:03.0/numa_node": "0\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "sys/fs/cgroup/cpu").symlink_to("cpu,cpuacct")
    (root / "sys/bus/pci/devices").mkdir(parents=True)
    (root / "sys/bus/pci/devices/0000:00:03.0").symlink_to("../../../devices/pci0000:00/0000:00:03.0")
    write_snapshot(root, tmp_path / "s.tar.gz")
    with tarfile.open(tmp_path / "s.tar.gz") as tar:
        names = set(tar.getnames())
    assert "sys/module/kvm_intel/parameters/nested" not in names
    assert "sys/bus/pci/devices/0000:00:03.0/numa_node" in names
    with open_root(tmp_path / "s.tar.gz") as extracted:
        got, want = probe_host_caps(extracted), probe_host_caps(root)
    assert (got.apicv, got.cgroup_version, got.rt_runtime_us, got.rt_runtime_path, got.pci_numa) == (
        want.apicv, want.cgroup_version, want.rt_runtime_us, want.rt_runtime_path, want.pci_numa,
    )  # fmt: skip
    assert (want.apicv, want.rt_runtime_us, want.pci_numa) == (False, 0, (("0000:00:03.0", 0),))


def _snapshot(hosts_tmp: Path, tmp_path: Path, name: str = "dual-skylake-ht-interleaved") -> Path:
    snap = tmp_path / f"{name}.tar.gz"
    write_snapshot(host_root(name, hosts_tmp), snap)
    return snap


def test_manifest_is_the_first_member(hosts_tmp: Path, tmp_path: Path) -> None:
    snap = _snapshot(hosts_tmp, tmp_path)
    with tarfile.open(snap) as tar:
        members = tar.getmembers()
        manifest = json.loads(tar.extractfile(members[0]).read())  # type: ignore[union-attr]
    assert members[0].name == MANIFEST
    host = read_sysfs(host_root("dual-skylake-ht-interleaved", hosts_tmp))
    assert manifest["cpus"] == len(host.cpus) and manifest["nodes"] == len(host.nodes)
    assert manifest["files"] == sum(m.isfile() for m in members[1:])
    assert manifest["members"] == len(members) - 1 and len(manifest["sha256"]) == 64


@pytest.mark.parametrize("percent", [50, 75, 90, 99])
def test_truncated_snapshot_is_refused(
    percent: int,
    hosts_tmp: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _snapshot(hosts_tmp, tmp_path).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) * percent // 100])
    code, out, err = run(["host", "--sysfs", str(cut)], capsys, monkeypatch, tmp_path)
    assert (code, out) == (2, "")
    assert err == f"vmtune: error: {cut}: {TRUNCATED}; nothing read\n"


def _rewrite(snap: Path, out: Path, change: Callable[[bytes], bytes]) -> Path:
    """``snap`` with its tar bytes changed and gzipped again (so gzip's own CRC is right)."""
    out.write_bytes(gzip.compress(change(gzip.decompress(snap.read_bytes()))))
    return out


def test_altered_snapshot_is_refused(
    hosts_tmp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = _snapshot(hosts_tmp, tmp_path)
    with tarfile.open(snap) as tar:
        online = tar.getmember("sys/devices/system/cpu/online")
        text = tar.extractfile(online).read()  # type: ignore[union-attr]

    def fewer_cpus(tar: bytes) -> bytes:  # same length, one digit less: "0-31" -> "0-21"
        at = online.offset_data
        assert tar[at : at + len(text)] == text
        return tar[:at] + text.replace(b"3", b"2", 1) + tar[at + len(text) :]

    altered = _rewrite(snap, tmp_path / "altered.tar.gz", fewer_cpus)
    code, _, err = run(["host", "--sysfs", str(altered)], capsys, monkeypatch, tmp_path)
    assert code == 2
    assert err == f"vmtune: error: {altered}: {ALTERED} (sha256 differ from its manifest); nothing read\n"
    # the last member dropped (the end-of-archive blocks follow it directly): the counts differ too
    with tarfile.open(snap) as tar:
        last = tar.getmembers()[-1]
    dropped = _rewrite(snap, tmp_path / "dropped.tar.gz", lambda tar: tar[: last.offset] + bytes(10240))
    code, _, err = run(["host", "--sysfs", str(dropped)], capsys, monkeypatch, tmp_path)
    assert code == 2 and "members, files" in err and str(dropped) in err


def test_snapshot_without_manifest_is_read_with_a_note(
    hosts_tmp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snapshots of earlier vmtune versions have no manifest: read, with a note saying it was not checked."""
    snap = _snapshot(hosts_tmp, tmp_path)
    old = tmp_path / "old.tar.gz"
    with tarfile.open(snap) as src, tarfile.open(old, "w:gz", format=tarfile.USTAR_FORMAT) as dst:
        for member in src.getmembers()[1:]:
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    doc = _json(["host", "--sysfs", str(old), "--json"], capsys, monkeypatch, tmp_path)
    assert any("no manifest (written by an earlier vmtune)" in w for w in doc["warnings"])
    new = _json(["host", "--sysfs", str(snap), "--json"], capsys, monkeypatch, tmp_path)
    assert new["warnings"] == [] and doc["summary"] == new["summary"]


def test_reading_a_snapshot_writes_nothing(
    hosts_tmp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--sysfs SNAPSHOT` is read in memory: no temp dir, in TMPDIR or /dev/shm, that a kill could leave."""
    snap = _snapshot(hosts_tmp, tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    shm_before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    assert run(["host", "--sysfs", str(snap), "--json"], capsys, monkeypatch, tmp_path)[0] == 0
    assert not list(scratch.iterdir())
    if shm_before:
        assert not {n for n in os.listdir("/dev/shm") if n.startswith("vmtune-")} - shm_before


_PAUSED_EXTRACT = """
import sys, time
from pathlib import Path
from vmtune.adapters.snapshot import open_root
with open_root(Path(sys.argv[1])) as root:
    print(root, flush=True)
    time.sleep(30)
"""


def test_sigterm_while_extracted_removes_the_temp_dir(hosts_tmp: Path, tmp_path: Path) -> None:
    snap = _snapshot(hosts_tmp, tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    stale = scratch / "vmtune-snapshot-k1ll3d"
    (stale / "sys").mkdir(parents=True)
    past = time.time() - 7200
    os.utime(stale, (past, past))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TMPDIR": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-c", _PAUSED_EXTRACT, str(snap)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    with proc, proc.stdout:  # type: ignore[union-attr]
        assert proc.stdout is not None
        extracted = Path(proc.stdout.readline().decode().strip())
        assert extracted.parent == scratch and (extracted / "sys/devices/system/cpu/online").is_file()
        assert extracted.stat().st_mode & 0o777 == 0o700
        assert not stale.exists(), "a temp dir a SIGKILL left an hour ago is swept"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not list(scratch.iterdir())
