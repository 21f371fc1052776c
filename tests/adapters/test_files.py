"""Writing a file never loses one: atomic replace that keeps owner, mode, xattrs and symlinks, refuses a file
changed meanwhile or shared by hard links, and leaves no temp file behind (real files, real processes)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testutil import CORPORA, DATA, REPO
from vmtune.adapters.files import STALE_TEMP_SECONDS, TEMP_SUFFIX, atomic_write
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.intent.model import Intent
from vmtune.errors import InputError
from vmtune.service import Planned, plan_document, write_document

HOST = CORPORA / "sysfs" / "hwloc-16em64t-4s2c2t"
SERVER = DATA / "domains" / "linux-server.xml"
EDIT = b"<!-- edited by the operator while vmtune planned -->\n"
NOBODY = 65534


def _plan(path: Path) -> Planned:
    return plan_document(path.read_bytes(), source=str(path), host=read_sysfs(HOST), tenants=[],
                         intent=Intent(), caps=None)  # fmt: skip


def _temps(directory: Path) -> list[Path]:
    return sorted(directory.glob(f".*{TEMP_SUFFIX}"))


@pytest.mark.skipif(not HOST.is_dir(), reason="corpus host missing")
def test_concurrent_edit_is_never_lost(tmp_path: Path) -> None:
    """Another process appends to the file between vmtune's read and its rename (the widest window, after
    the temp file is written): vmtune refuses every time and the edit survives. Lost updates: 0 of 30."""
    target = tmp_path / "web.xml"
    lost = 0
    for round_ in range(30):
        target.write_bytes(SERVER.read_bytes())
        planned = _plan(target)
        line = EDIT.replace(b"operator", f"operator {round_}".encode())

        def edit(line: bytes = line) -> None:
            subprocess.run(["sh", "-c", 'printf "%s" "$1" >> "$2"', "sh", line, target], check=True)

        with pytest.raises(InputError, match=r"web\.xml: changed while planning, nothing written"):
            write_document(planned, target, target, before_commit=edit)
        lost += not target.read_bytes().endswith(line)
        assert not _temps(tmp_path)
    assert lost == 0


@pytest.mark.skipif(not HOST.is_dir(), reason="corpus host missing")
def test_same_size_rewrite_during_planning_is_refused(tmp_path: Path) -> None:
    """An edit that keeps the size (one character changed) is caught by the bytes, not only the stat."""
    target = tmp_path / "web.xml"
    target.write_bytes(SERVER.read_bytes())
    planned = _plan(target)
    edited = SERVER.read_bytes().replace(b"web01", b"web02", 1)
    assert len(edited) == len(planned.raw)
    with pytest.raises(InputError, match="changed while planning"):
        write_document(planned, target, target, before_commit=lambda: target.write_bytes(edited))
    assert target.read_bytes() == edited


def test_symlink_is_written_through(tmp_path: Path) -> None:
    """libvirt's autostart/NAME.xml -> ../NAME.xml: the target gets the bytes, the link stays a link."""
    (tmp_path / "autostart").mkdir()
    real = tmp_path / "vm.xml"
    real.write_bytes(b"old\n")
    real.chmod(0o600)
    link = tmp_path / "autostart" / "vm.xml"
    link.symlink_to("../vm.xml")
    atomic_write(link, b"new\n", expected=b"old\n")
    assert link.is_symlink() and os.readlink(link) == "../vm.xml"
    assert real.read_bytes() == b"new\n" and real.stat().st_mode & 0o777 == 0o600
    assert not _temps(tmp_path) and not _temps(tmp_path / "autostart")


def test_owner_mode_and_xattrs_are_kept(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    target = tmp_path / "vm.xml"
    target.write_bytes(b"old\n")
    os.chown(target, NOBODY, NOBODY)
    target.chmod(0o640)
    try:
        os.setxattr(target, "user.vmtune-test", b"managed-by-config")
    except OSError as err:
        if err.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        pytest.skip(f"{tmp_path}: filesystem without user.* extended attributes")
    labels = {name: os.getxattr(target, name) for name in os.listxattr(target)}
    old_inode = target.stat().st_ino
    atomic_write(target, b"new\n", backup=True)
    st = target.stat()
    assert st.st_ino != old_inode, "replaced by rename"
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (NOBODY, NOBODY, 0o640)
    assert {name: os.getxattr(target, name) for name in os.listxattr(target)} == labels
    bak = tmp_path / "vm.xml~"
    assert bak.read_bytes() == b"old\n"
    assert (bak.stat().st_uid, bak.stat().st_gid, bak.stat().st_mode & 0o7777) == (NOBODY, NOBODY, 0o640)


def test_hard_linked_file_is_refused(tmp_path: Path) -> None:
    """A rename would leave the other name on the old bytes; rewriting the inode is not crash-safe."""
    target = tmp_path / "vm.xml"
    target.write_bytes(b"old\n")
    other = tmp_path / "copy.xml"
    os.link(target, other)
    with pytest.raises(InputError, match=r"vm\.xml: has 2 hard links.*nothing written"):
        atomic_write(target, b"new\n", expected=b"old\n")
    assert target.read_bytes() == other.read_bytes() == b"old\n"
    assert os.path.samefile(target, other) and not _temps(tmp_path)


def test_stale_temp_files_are_swept(tmp_path: Path) -> None:
    stale = tmp_path / f".vm.xml.k1ll3d{TEMP_SUFFIX}"
    fresh = tmp_path / f".vm.xml.running{TEMP_SUFFIX}"
    unrelated = tmp_path / "notes.vmtune-tmp"
    for path in (stale, fresh, unrelated):
        path.write_bytes(b"partial")
    past = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (past, past))
    os.utime(unrelated, (past, past))
    atomic_write(tmp_path / "other.xml", b"new\n")
    assert not stale.exists()
    assert fresh.exists(), "a concurrent run's temp file is younger than an hour: kept"
    assert unrelated.exists(), "not a vmtune temp name"


_PAUSED_WRITER = """
import os, sys, time
from pathlib import Path
from vmtune.adapters.files import atomic_write
def pause():
    print("paused", flush=True)
    time.sleep(30)
atomic_write(Path(sys.argv[1]), b"new\\n", expected=b"old\\n", before_commit=pause)
"""


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, -2), (signal.SIGHUP, 129)]
)
def test_signal_mid_write_removes_the_temp_file(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    """A process stopped while its temp file exists: the target keeps its old bytes, no temp is left."""
    target = tmp_path / "vm.xml"
    target.write_bytes(b"old\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _PAUSED_WRITER, str(target)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    with proc, proc.stdout:  # type: ignore[union-attr]
        assert proc.stdout is not None and proc.stdout.readline() == b"paused\n"
        assert len(_temps(tmp_path)) == 1
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == code  # SIGINT: Python ends an uncaught Ctrl-C by the signal
    assert target.read_bytes() == b"old\n"
    assert not _temps(tmp_path)
