"""domcapabilities from a live connection, and what happens when libvirt won't give them.

libvirt's test driver (``test:///default``, in libvirt-python) answers getCapabilities but not
getDomainCapabilities, the state of a connection that may not read them: a plan is then gated to what
every KVM host provides, and `hook install --connect` stops before it writes anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vmtune.adapters.libvirt import read_domcaps
from vmtune.cli.app import main

pytest.importorskip("libvirt")

TEST_URI = "test:///default"
WIN = """<domain type='kvm'>
  <name>win</name>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>
      <libosinfo:os id='http://microsoft.com/win/11'/>
    </libosinfo:libosinfo>
  </metadata>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/><apic/></features>
</domain>
"""


def test_read_domcaps_tries_read_write_then_read_only_and_says_why() -> None:
    xml, why = read_domcaps(TEST_URI)
    assert xml is None
    assert why.startswith("read-write: ") and "; read-only: " in why


def test_plan_with_unreadable_domcaps_writes_only_what_every_kvm_host_provides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "win.xml"
    src.write_text(WIN)
    assert main(["plan", str(src), "--connect", TEST_URI, "--profile", "windows"]) == 0
    out, err = capsys.readouterr()
    assert "<relaxed state='on'/><spinlocks state='on' retries='8191'/></hyperv>" in out
    assert "vpindex" not in out and "hypervclock" not in out
    assert f"domcapabilities of {TEST_URI} not readable" in err
    assert "left out vapic, vpindex" in err and "--domcapabilities FILE" in err


def test_hook_install_connect_failure_leaves_nothing_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks = tmp_path / "hooks"
    assert main(["hook", "install", "--dir", str(hooks), "--connect", TEST_URI]) == 4
    assert not hooks.exists()
    assert "nothing written" in capsys.readouterr().err


def test_hook_install_into_an_unwritable_dir_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["hook", "install", "--dir", str(blocker / "hooks")]) == 2
    assert "nothing written" in capsys.readouterr().err
    assert blocker.read_text() == ""
