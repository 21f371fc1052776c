"""`plan --domain --json` and `apply --domain --json`: the JSON the collection's `tune` module reads.

A stand-in connection (the ``service.Libvirt`` primitives over one in-memory definition) replaces libvirt;
tests/e2e/test_ansible.py runs the same commands against the real daemon.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testutil import host_root
from vmtune.adapters.sysfs import read_sysfs
from vmtune.cli import live_cmd
from vmtune.cli.app import main
from vmtune.core.guest import GuestSpec
from vmtune.core.plan import Plan
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host

GUEST = """<domain type='kvm'>
  <name>web</name>
  <memory unit='MiB'>1024</memory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
</domain>
"""


@dataclass
class FakeConnection:
    uri: str
    topology: Host
    xml: str = GUEST
    defines: list[str] = field(default_factory=list)
    domcaps_problem: str | None = None

    def host(self) -> Host:
        return self.topology

    def caps(self, guest: GuestSpec | None = None) -> HostCaps | None:
        return None

    def tenants(self) -> tuple[GuestSpec, ...]:
        return ()

    def domain_xml(self, name: str, *, inactive: bool) -> str:
        return self.xml

    def define_validated(self, name: str, xml: str) -> None:
        self.defines.append(xml)
        self.xml = xml

    def restore_definition(self, name: str, xml: str) -> None:
        self.xml = xml

    def is_running(self, name: str) -> bool:
        return False

    def repin(self, name: str, plan: Plan) -> tuple[str, ...]:
        return ()


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeConnection:
    conn = FakeConnection(uri="qemu:///system", topology=read_sysfs(host_root("dual-ht-adjacent", tmp_path)))

    @contextlib.contextmanager
    def connect(uri: str, *, readonly: bool = False) -> Iterator[FakeConnection]:
        yield conn

    monkeypatch.setattr(live_cmd, "connect", connect)
    return conn


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(args) == 0, capsys.readouterr().err
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_plan_predicts_what_apply_defines_and_apply_is_idempotent(
    fake: FakeConnection, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ["--connect", "qemu:///system", "--domain", "web", "--json"]
    planned = _json(["plan", *target], capsys)
    assert fake.defines == []
    assert planned["changed"] is True and planned["defined"] is False
    assert planned["before"] == GUEST and "<vcpupin" in planned["after"]
    assert {"plan", "needs_restart", "live_applied", "running", "uri", "domain"} <= set(planned)

    applied = _json(["apply", *target], capsys)
    assert applied["changed"] is applied["defined"] is True
    assert fake.defines == [planned["after"]]
    assert applied["plan"]["vcpupins"] == planned["plan"]["vcpupins"]

    again = _json(["apply", *target], capsys)
    assert again["changed"] is False and len(fake.defines) == 1
    assert _json(["plan", *target], capsys)["changed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--domain", "web"], "needs --connect URI"),
        (
            ["plan", "--connect", "qemu:///system", "--domain", "web", "--explain"],
            "--explain only apply to files",
        ),
        (["plan", "--connect", "qemu:///system"], "give DOMAIN.xml files, or --connect URI --domain NAME"),
        (["apply", "x.xml", "--json"], "--json needs --connect URI --domain NAME"),
    ],
)
def test_domain_and_json_misuse_is_refused(
    fake: FakeConnection, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert fake.defines == []
