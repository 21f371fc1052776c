"""End-to-end fixtures: a real libvirtd on ``qemu:///system``, throw-away guests, the real vmtune CLI.

With ``VMTUNE_E2E_REQUIRED=1`` (``.ci/run`` sets it) a missing daemon or binding FAILS the session;
elsewhere the tests skip with the reason. Guests are named ``vmtune-e2e-<test>-<random>`` and destroyed +
undefined after each test, also when it fails.

Guests have no ``<cpu>`` (QEMU's default qemu64 model starts everywhere). ``--profile latency`` gives
them ``<cpu mode='host-passthrough'>``, plus ``<feature policy='disable' name='arch-capabilities'/>`` on a
host whose KVM refuses MSR 0x10a (IA32_ARCH_CAPABILITIES); test_nested_cpu.py checks that against what
libvirt does with a plain host CPU guest here.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from e2ehelp import MEASURED, REQUIRED, URI, Libvirt

GUEST = """<domain type='{type}'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices><memballoon model='none'/></devices>
</domain>
"""


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"e2e required (VMTUNE_E2E_REQUIRED=1) but {reason}", pytrace=False)
    pytest.skip(reason)


def kvm_works() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


@pytest.fixture(scope="session")
def libvirt_session() -> Iterator[Libvirt]:
    try:
        import libvirt
    except ImportError:
        _unavailable("libvirt-python is not installed (pip install 'vmtune[live]')")
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as err:
        _unavailable(f"no libvirtd answers on {URI} ({err}); start one with scripts/libvirt-up.sh")
    # a previous run killed mid-test may have left guests behind
    for dom in conn.listAllDomains(0):
        if dom.name().startswith("vmtune-e2e-"):
            _remove(dom)
    session = Libvirt(conn=conn, lv=libvirt, domain_type="kvm" if kvm_works() else "qemu")
    yield session
    with contextlib.suppress(libvirt.libvirtError):
        session.conn.close()  # not `conn`: test_zz_hook_libvirt restarts libvirtd and reconnects


def _remove(dom: Any) -> None:
    import libvirt

    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass
    with contextlib.suppress(libvirt.libvirtError):
        dom.undefine()


@pytest.fixture
def make_guest(libvirt_session: Libvirt, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """``make_guest(vcpus=2)`` defines a diskless guest and returns its name; all are removed afterwards."""
    made: list[str] = []

    def make(*, vcpus: int, xml: str | None = None) -> str:
        tag = request.node.name.removeprefix("test_").replace("_", "-")[:20]
        name = f"vmtune-e2e-{tag}-{uuid.uuid4().hex[:6]}"
        body = xml or GUEST.format(type=libvirt_session.domain_type, name=name, vcpus=vcpus)
        libvirt_session.conn.defineXML(body.replace("NAME", name))  # .conn: a restart reconnects
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            dom = libvirt_session.conn.lookupByName(name)
        except libvirt_session.lv.libvirtError:
            continue
        _remove(dom)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the e2e tests measured (thread affinities vs. plan, refusals) where CI logs show it."""
    if MEASURED:
        terminalreporter.section("vmtune e2e: measured on this host")
        for line in MEASURED:
            terminalreporter.write_line(line)
