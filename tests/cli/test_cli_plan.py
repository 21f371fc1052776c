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


@pytest.mark.parametrize(("flag", "stored"), [("--no-isolate-host", b"isolate-host='no'"), (None, None)])
def test_a_realtime_guest_opts_out_of_host_isolation(
    flag: str | None, stored: bytes | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.xml"
    args = ["apply", str(SERVER), "--sysfs", str(HOST), "--profile", "realtime", "--force", "-o", str(out)]
    assert main(args + ([flag] if flag else [])) == 0, capsys.readouterr().err
    written = out.read_bytes()
    # unset, the realtime profile decides (isolation on) and nothing is stored; "no" is kept
    assert (b"isolate-host=" in written) is (stored is not None)
    if stored is not None:
        assert stored in written


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
    with pytest.raises(InputError, match="changed while planning, nothing written"):
        write_document(prep, target, target)
    assert target.read_bytes().endswith(b"<!-- edited meanwhile -->\n")


def _batch_apply_underway(tmp_path: Path) -> tuple[bytes, bytes, Path, subprocess.Popen[bytes]]:
    """300 copies of one guest being applied in place by a subprocess that has written the first one."""
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
    return original, new, batch, proc


def test_kill_during_batch_apply_leaves_old_or_new_files(tmp_path: Path) -> None:
    """SIGKILL in the middle of a batch: every file is complete, either the old or the new bytes."""
    original, new, batch, proc = _batch_apply_underway(tmp_path)
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


def test_two_inputs_for_one_output_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.xml").write_bytes(SERVER.read_bytes())
    args = ["apply", str(tmp_path / "a" / "x.xml"), str(tmp_path / "b" / "x.xml"), "--sysfs", str(HOST)]
    assert main([*args, "-o", str(out)]) == 2
    assert f"would both write {out / 'x.xml'}; nothing written" in capsys.readouterr().err
    assert not list(out.iterdir())
    # in place, a file and a symlink to it (libvirt's autostart/) are one guest: planned and written once
    (tmp_path / "a" / "auto.xml").symlink_to("x.xml")
    both = [str(tmp_path / "a" / "x.xml"), str(tmp_path / "a" / "auto.xml")]
    assert main(["apply", *both, "--sysfs", str(HOST), "--in-place"]) == 0
    err = capsys.readouterr().err
    assert "auto.xml: the same file as" in err and "counted once" in err
    assert err.count(": changed") == 1
    assert (tmp_path / "a" / "auto.xml").is_symlink()
    assert (tmp_path / "a" / "x.xml").read_bytes() != SERVER.read_bytes()


def test_apply_through_autostart_symlink(tmp_path: Path) -> None:
    real = tmp_path / "web.xml"
    real.write_bytes(SERVER.read_bytes())
    (tmp_path / "autostart").mkdir()
    link = tmp_path / "autostart" / "web.xml"
    link.symlink_to("../web.xml")
    assert main(["apply", str(link), "--sysfs", str(HOST), "--in-place"]) == 0
    assert link.is_symlink() and os.readlink(link) == "../web.xml"
    assert b"<cputune>" in real.read_bytes()


def test_output_file_keeps_its_own_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    out.write_bytes(b"<domain/>\n")
    out.chmod(0o600)
    assert main(["apply", str(SERVER), "--sysfs", str(HOST), "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600 and b"<cputune>" in out.read_bytes()


def test_edit_during_apply_exits_2_and_survives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator saves the file while vmtune plans: exit 2 naming it, the operator's bytes stay."""
    target = tmp_path / "web.xml"
    target.write_bytes(SERVER.read_bytes())
    edited = SERVER.read_bytes() + b"<!-- saved meanwhile -->\n"

    def paused(*args: object, **kwargs: object) -> None:
        write_document(*args, before_commit=lambda: target.write_bytes(edited), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("vmtune.cli.plan_run.write_document", paused)
    assert main(["apply", str(target), "--sysfs", str(HOST), "--in-place"]) == 2
    assert f"{target}: changed while planning, nothing written" in capsys.readouterr().err
    assert target.read_bytes() == edited
    assert not list(tmp_path.glob(".*.vmtune-tmp"))


def test_sigterm_during_batch_apply_leaves_old_or_new_and_no_temp(tmp_path: Path) -> None:
    original, new, batch, proc = _batch_apply_underway(tmp_path)
    proc.send_signal(signal.SIGTERM)
    # 143: the signal landed in a write (temp removed, SystemExit); -15: between writes (default action)
    assert proc.wait(timeout=60) in (128 + signal.SIGTERM, -signal.SIGTERM)
    states = [p.read_bytes() for p in sorted(batch.glob("*.xml"))]
    assert len(states) == 300 and all(s in (original, new) for s in states)
    assert states[0] == new and states[-1] == original, "the signal should land mid-batch"
    assert not list(batch.glob(".*.vmtune-tmp"))


def test_a_failing_file_among_many_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], corpora: Path
) -> None:
    """A message that names only the domain or a flag says which file failed when many are planned."""
    for name in ("a", "b"):
        (tmp_path / f"{name}.xml").write_bytes(SERVER.read_bytes())
    big = SERVER.read_text().replace("<name>", "<name>big-", 1)
    big = big.replace(big[big.index("<vcpu") : big.index("</vcpu>")], "<vcpu placement='static'>64")
    (tmp_path / "big.xml").write_text(big)
    rc = main(["plan", str(tmp_path), "--sysfs", str(HOST)])
    err = capsys.readouterr().err
    assert rc == 3, err
    failed = [line for line in err.splitlines() if line.startswith("vmtune: error: ")]
    assert failed == [line for line in failed if line.startswith(f"vmtune: error: {tmp_path / 'big.xml'}: ")]
    assert len(failed) == 1, err
