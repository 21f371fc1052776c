"""`vmtune plan` / `vmtune apply` end to end on a corpus host (the real planner, real files)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grimp
import pytest

from testutil import CORPORA, DATA
from vmtune.adapters.sysfs import read_sysfs
from vmtune.cli.app import main
from vmtune.core.intent.model import Intent
from vmtune.errors import InputError
from vmtune.service import plan_document, write_document

HOST = CORPORA / "sysfs" / "hwloc-16em64t-4s2c2t"
SERVER = DATA / "domains" / "linux-server.xml"

pytestmark = pytest.mark.skipif(not HOST.is_dir(), reason="corpus host missing")


def test_plan_prints_diff_on_stdout_notes_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(SERVER), "--sysfs", str(HOST), "--profile", "latency"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("--- a/linux-server.xml\n+++ b/linux-server.xml\n")
    assert "+    <vcpupin vcpu='0' cpuset=" in out
    assert "info: cpu:" in err and "info: cpu:" not in out


def test_plan_explain_puts_notes_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(SERVER), "--sysfs", str(HOST), "--explain"]) == 0
    out, _ = capsys.readouterr()
    assert "info: cpu:" in out


def test_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(SERVER), "--sysfs", str(HOST), "--json", "--profile", "latency,windows"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["file"] == str(SERVER) and doc["changed"] is True
    assert len(doc["plan"]["vcpupins"]) == 4
    assert doc["plan"]["intent"]["profiles"] == ["latency", "windows"]


def test_apply_output_then_replan_is_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.xml"
    assert main(["apply", str(SERVER), "--sysfs", str(HOST), "--profile", "latency", "-o", str(out)]) == 0
    written = out.read_bytes()
    assert b"<vmtune:tuning" in written and b"profile='latency'" in written
    capsys.readouterr()
    # no TUNING flags: the stored intent is reused, and the plan is already in the file
    assert main(["apply", str(out), "--sysfs", str(HOST), "--in-place", "--backup"]) == 0
    assert out.read_bytes() == written
    assert "unchanged" in capsys.readouterr().err


def test_apply_in_place_keeps_mode_and_backup(tmp_path: Path) -> None:
    target = tmp_path / "web.xml"
    target.write_bytes(SERVER.read_bytes())
    target.chmod(0o600)
    assert main(["apply", str(target), "--sysfs", str(HOST), "--in-place", "--backup"]) == 0
    assert target.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "web.xml~").read_bytes() == SERVER.read_bytes()
    assert b"<cputune>" in target.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--in-place", "-o", "x.xml"], "choose one of -o OUT and --in-place"),
        ([], "needs -o OUT or --in-place"),
        (["-o", "x.xml", "--backup"], "--backup goes with --in-place"),
        (["--in-place", "--profile", "fast"], "--profile 'fast': choose from"),
        (["--in-place", "--numa", "zero"], "--numa 'zero'"),
        (["--in-place", "--hugepages", "4K"], "--hugepages '4K'"),
        (["--in-place", "--reserve", "0-"], "--reserve"),
    ],
)
def test_apply_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", str(SERVER), "--sysfs", str(HOST), *args]) == 2
    assert message in capsys.readouterr().err
    assert SERVER.read_bytes().count(b"vcpupin") == 0


def test_refuses_when_file_changed_since_read(tmp_path: Path) -> None:
    target = tmp_path / "web.xml"
    target.write_bytes(SERVER.read_bytes())
    prep = plan_document(target.read_bytes(), source=str(target), host=read_sysfs(HOST), tenants=[],
                         intent=Intent(), caps=None)  # fmt: skip
    target.write_bytes(SERVER.read_bytes() + b"<!-- edited meanwhile -->\n")
    with pytest.raises(InputError, match="changed since vmtune read it"):
        write_document(prep, target, target)
    assert target.read_bytes().endswith(b"<!-- edited meanwhile -->\n")


def test_kill_during_batch_apply_leaves_old_or_new_files(tmp_path: Path) -> None:
    """SIGKILL in the middle of a batch: every file is complete, either the old or the new bytes."""
    original = SERVER.read_bytes()
    expected = tmp_path / "expected.xml"
    assert main(["apply", str(SERVER), "--sysfs", str(HOST), "-o", str(expected)]) == 0
    new = expected.read_bytes()
    batch = tmp_path / "batch"
    batch.mkdir()
    for i in range(300):
        (batch / f"vm{i:03d}.xml").write_bytes(original)
    cmd = [sys.executable, "-m", "vmtune", "apply", str(batch), "--in-place", "--sysfs", str(HOST)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (batch / "vm000.xml").read_bytes() == original:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    states = [p.read_bytes() for p in sorted(batch.glob("*.xml"))]
    assert len(states) == 300
    assert all(s in (original, new) for s in states)
    assert states[0] == new and states[-1] == original, "kill should land mid-batch"


def test_the_service_is_the_only_caller_of_the_planner() -> None:
    """Files, check --fix, the hook and apply --connect all plan through ``vmtune.service.plan_document``
    (pyproject's import-linter contract keeps the other layers off the planner; this pins the entries too)."""
    graph = grimp.build_graph("vmtune")
    assert graph.find_modules_that_directly_import("vmtune.core.planner") == {"vmtune.service"}
