"""The vmtune.libvirt Ansible collection against the real libvirtd: check mode, diff, apply, idempotence,
and `check` failing on two guests pinned to one CPU.

``ansible-playbook`` (ansible-core, the ``dev`` extra) runs as an operator runs it: connection local,
ANSIBLE_COLLECTIONS_PATH at ansible/, the modules on this venv's python, and ``vmtune`` on PATH (a wrapper
that runs this checkout's vmtune, as the installed one would).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2ehelp import REQUIRED, URI, Libvirt, record, spare_pins

from testutil import REPO

pytestmark = pytest.mark.e2e

PINNED = """<domain type='{type}'>
  <name>NAME</name>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>1</vcpu>
  <cputune><vcpupin vcpu='0' cpuset='{cpu}'/></cputune>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices><memballoon model='none'/></devices>
</domain>
"""


def _playbook_bin() -> str:
    found = shutil.which(
        "ansible-playbook", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    )
    if found is None:
        reason = "ansible-playbook not found (pip install 'vmtune[dev]' brings ansible-core)"
        if REQUIRED:
            pytest.fail(f"e2e required (VMTUNE_E2E_REQUIRED=1) but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def _env(tmp_path: Path) -> dict[str, str]:
    """ansible-playbook's environment: vmtune on PATH, no cows, no retry files."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / "vmtune"
    wrapper.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m vmtune \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{bindir}:{env.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(REPO / "src"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "ansible"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_NOCOWS="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    return env


def _playbook(tmp_path: Path, tasks: list[dict[str, Any]], out: Path) -> Path:
    """The tasks in a block whose ``always`` writes each registered result to ``out/N.json`` (also in
    check mode, and after a failure), where the test reads them back."""
    registered = [{**task, "register": f"r{i}"} for i, task in enumerate(tasks)]
    dump = [
        {"ansible.builtin.copy": {"content": f"{{{{ r{i} | default({{}}) | to_json }}}}",
                                  "dest": str(out / f"{i}.json")},
         "check_mode": False, "diff": False}
        for i in range(len(tasks))
    ]  # fmt: skip
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable},
             "tasks": [{"block": registered, "always": dump}]}]  # fmt: skip
    path = out / "play.yml"
    path.write_text(json.dumps(play))  # JSON is YAML
    return path


def _run(tmp_path: Path, tasks: list[dict[str, Any]], *flags: str) -> tuple[int, list[dict[str, Any]]]:
    """Run the tasks; (exit code, each task's registered result, in order)."""
    out = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    out.mkdir()
    cmd = [_playbook_bin(), "-i", "localhost,", *flags, str(_playbook(tmp_path, tasks, out))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env(tmp_path), check=False)
    try:
        results = [json.loads((out / f"{i}.json").read_text()) for i in range(len(tasks))]
    except (OSError, ValueError):
        raise AssertionError(f"no results from ansible-playbook:\n{proc.stdout}\n{proc.stderr}") from None
    return proc.returncode, results


def _inactive_xml(libvirt_session: Libvirt, name: str) -> str:
    dom = libvirt_session.conn.lookupByName(name)
    return str(dom.XMLDesc(libvirt_session.lv.VIR_DOMAIN_XML_INACTIVE))


def test_tune_check_mode_diff_apply_and_idempotence(
    libvirt_session: Libvirt, make_guest: Callable[..., str], tmp_path: Path
) -> None:
    name = make_guest(vcpus=1)
    task = {"name": "tune", "vmtune.libvirt.tune": {"guest": name, "uri": URI, "profile": ["balanced"]}}
    untouched = _inactive_xml(libvirt_session, name)

    rc, (checked,) = _run(tmp_path, [task], "--check", "--diff")
    assert rc == 0, checked
    assert checked["changed"] is True
    assert _inactive_xml(libvirt_session, name) == untouched, "check mode defined the domain"
    xml_diff, reasons = checked["diff"]
    assert "<vcpupin" not in xml_diff["before"] and "<vcpupin" in xml_diff["after"]
    assert "cpu:" in reasons["prepared"]
    record(
        f"ansible check mode: changed predicted, domain untouched; diff adds {checked['plan']['vcpupins']}"
    )

    rc, (applied,) = _run(tmp_path, [task], "--diff")
    assert rc == 0, applied
    assert applied["changed"] is True
    assert applied["plan"]["vcpupins"] == checked["plan"]["vcpupins"], "check mode predicted other pins"
    assert "<vcpupin" in _inactive_xml(libvirt_session, name)
    assert applied["needs_restart"] is False and applied["live_applied"] == []

    rc, (again,) = _run(tmp_path, [task])
    assert rc == 0 and again["changed"] is False, again
    rc, (again_checked,) = _run(tmp_path, [task], "--check")
    assert rc == 0 and again_checked["changed"] is False, again_checked
    record("ansible tune: applied (changed), second run and second check run changed=false")


def test_facts_and_check_failing_on_a_colliding_guest(
    libvirt_session: Libvirt, make_guest: Callable[..., str], tmp_path: Path
) -> None:
    cpu = spare_pins()["vcpu"]
    pinned = PINNED.format(type=libvirt_session.domain_type, cpu=cpu)
    first, second = make_guest(vcpus=1, xml=pinned), make_guest(vcpus=1, xml=pinned)
    facts_task = {"name": "facts", "vmtune.libvirt.facts": {"uri": URI}}
    check_task = {"name": "check", "vmtune.libvirt.check": {"uri": URI}}

    rc, (facts, checked) = _run(tmp_path, [facts_task, check_task])
    assert rc != 0, "the playbook passed despite an error-level finding"
    assert facts["ansible_facts"]["vmtune_host"]["summary"]["cores"] >= 1
    assert facts["ansible_facts"]["vmtune_cpu_owners"] is not None
    assert checked.get("failed") is True, checked
    guests = {f["guest"] for f in checked["failing"]}
    assert {first, second} & guests, checked["failing"]
    assert all(f["severity"] == "error" for f in checked["failing"])
    record(
        f"ansible check: failed on {sorted({f['code'] for f in checked['failing']})} for guests on CPU {cpu}"
    )

    rc, (reported,) = _run(tmp_path, [{"vmtune.libvirt.check": {"uri": URI, "fail_on": "never"}}])
    assert rc == 0 and not reported.get("failed") and reported["findings"], reported
