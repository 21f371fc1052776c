"""The hook inside the real libvirtd: `vmtune hook install`, restart libvirtd, a colliding start is refused.

libvirtd looks for hook scripts only when it starts (``virHookInitialize`` in the daemon's startup), so
this test installs ``/etc/libvirt/hooks/qemu.d/vmtune``, restarts the daemon through
``scripts/libvirt-down.sh`` + ``scripts/libvirt-up.sh`` (which keep the pids file right, so the
``make test`` teardown still stops what it started), and undoes both afterwards. It only does that to a
libvirtd that ``libvirt-up.sh`` started; another one (a developer's own) is left alone and the test
skips. Named ``test_zz_*`` so that it runs after the other e2e tests.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2ehelp import REQUIRED, URI, Libvirt, vcpu_affinity, vmtune

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HOOKS = Path("/etc/libvirt/hooks")
PIDS = Path(os.environ.get("VMTUNE_PIDS_FILE", "/run/vmtune-test-daemons.pids"))


def _restart(lv: Libvirt) -> None:
    for script in ("libvirt-down.sh", "libvirt-up.sh"):
        res = subprocess.run(
            [REPO / "scripts" / script], capture_output=True, text=True, timeout=120, check=False
        )
        assert res.returncode == 0, f"{script}: {res.stdout}{res.stderr}"
    lv.conn = lv.lv.open(URI)


@pytest.fixture
def hook_installed(libvirt_session: Libvirt) -> Iterator[Path]:
    if not (PIDS.is_file() and any(line.startswith("libvirtd ") for line in PIDS.read_text().splitlines())):
        reason = f"libvirtd was not started by scripts/libvirt-up.sh ({PIDS}); not restarting someone else's"
        if REQUIRED:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    target = HOOKS / "qemu.d" / "vmtune"
    existed = target.exists()
    res = vmtune("hook", "install", "--dir", str(HOOKS))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(target)
    assert target.stat().st_mode & 0o777 == 0o755
    again = vmtune("hook", "install", "--dir", str(HOOKS))  # idempotent: no change, no restart hint
    assert (again.returncode, again.stderr) == (0, "")
    _restart(libvirt_session)
    try:
        yield target
    finally:
        if not existed:
            target.unlink(missing_ok=True)
        _restart(libvirt_session)


def test_hook_refuses_colliding_start(
    libvirt_session: Libvirt, make_guest: Callable[..., str], hook_installed: Path
) -> None:
    t0 = time.monotonic()
    first = make_guest(vcpus=1)
    res = vmtune("apply", "--connect", URI, "--domain", first, "--profile", "latency")
    assert res.returncode == 0, res.stderr
    libvirt_session.conn.lookupByName(first).create()  # the hook lets it through (nothing else runs)
    assert vcpu_affinity(first) == {0: "1"}

    # a second guest with vmtune intent pinned to the same CPU, as a stale copy of the first would be
    xml = libvirt_session.conn.lookupByName(first).XMLDesc(libvirt_session.lv.VIR_DOMAIN_XML_INACTIVE)
    xml = xml.replace(f"<name>{first}</name>", "<name>NAME</name>")
    xml = "\n".join(line for line in xml.splitlines() if "<uuid>" not in line)
    second = make_guest(vcpus=1, xml=xml)
    dom = libvirt_session.conn.lookupByName(second)
    with pytest.raises(libvirt_session.lv.libvirtError) as refused:
        dom.create()
    message = str(refused.value)
    print(f"\nlibvirt refused '{second}' in {time.monotonic() - t0:.1f}s: {message}")
    assert "vmtune: refusing to start" in message and "VT104" in message
    assert not dom.isActive()
    # once the first guest is gone (release end drops its claim), the same definition starts
    libvirt_session.conn.lookupByName(first).destroy()
    dom.create()
    assert vcpu_affinity(second) == {0: "1"}
