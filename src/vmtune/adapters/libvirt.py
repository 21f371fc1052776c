"""libvirt through libvirt-python: the only ``import libvirt`` in vmtune, and a lazy one.

* ``open_host(uri)``: topology from ``getCapabilities()``;
* ``Connection.caps``: ``getDomainCapabilities()`` for the guest's emulator/arch/machine/virttype, plus the
  host probes when the URI is local; ``read_domcaps(uri)``: the same XML through the first connection
  allowed to read it (libvirt refuses it on read-only connections: read-write first, which root may open,
  then read-only for daemons that allow it), or why it could not be had;
* ``Connection.tenants``: every defined domain; running ones with their *live* pins (``vcpuPinInfo``,
  ``emulatorPinInfo``, ``iothreadInfo``), which ``virsh vcpupin --live`` may have moved off the XML;
* the primitives ``vmtune.service.apply_domain`` runs in order: ``define_validated`` (``defineXML`` with
  ``VIR_DOMAIN_DEFINE_VALIDATE``: libvirt checks its own RelaxNG schema), ``domain_xml`` (the read-back),
  ``restore_definition`` (the rollback), ``repin`` (``pinVcpuFlags``/``pinEmulator``/``pinIOThread``
  with ``AFFECT_LIVE|AFFECT_CONFIG`` on a running guest).

Every ``libvirtError`` becomes ``vmtune.errors.LibvirtError`` (exit 4) naming the operation and domain.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from vmtune.adapters.probes import merge_caps, probe_host_caps
from vmtune.adapters.procfs import read_threads
from vmtune.core.guest import GuestSpec, IOThreadPin, VcpuPin
from vmtune.core.plan import Plan
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.verify.compare import ThreadKind
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError, LibvirtError
from vmtune.xmlmap.capabilities import capabilities_caps, parse_capabilities
from vmtune.xmlmap.domcaps import parse_domcapabilities
from vmtune.xmlmap.guest import read_guest

__all__ = [
    "Connection",
    "connect",
    "import_libvirt",
    "is_local",
    "live_domcaps",
    "open_host",
    "qemu_pid",
    "read_domcaps",
    "running_guests",
]

T = TypeVar("T")
INSTALL_HINT = "--connect needs the libvirt Python binding: pip install 'vmtune[live]' (libvirt-python)"


def import_libvirt() -> ModuleType:
    try:
        import libvirt
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    module: ModuleType = libvirt
    return module


def is_local(uri: str) -> bool:
    """True when the URI names this host (``qemu:///system``), so /proc and sysfs describe its guests."""
    parts = urlsplit(uri)
    return not parts.hostname and "+" not in parts.scheme.replace("+unix", "")


class Connection:
    """A libvirt connection whose calls raise LibvirtError naming the operation and the domain."""

    def __init__(self, uri: str, raw: Any, lv: ModuleType) -> None:
        self.uri = uri
        self.raw = raw
        self.lv = lv
        self._capabilities: str | None = None
        self.domcaps_problem: str | None = None
        """Why ``caps`` had no domcapabilities (then Hyper-V support is unknown); None when it had them."""

    def call(self, op: str, fn: Callable[..., T], *args: Any, domain: str | None = None) -> T:
        try:
            return fn(*args)
        except self.lv.libvirtError as err:
            where = f" of domain '{domain}'" if domain else ""
            raise LibvirtError(f"{op}{where} on {self.uri}: {err.get_error_message() or err}") from None

    # -- reads ----------------------------------------------------------------------------------------
    def capabilities(self) -> str:
        """``virsh capabilities`` XML (fetched once per connection: topology and nesting both need it)."""
        if self._capabilities is None:
            self._capabilities = self.call("getCapabilities", self.raw.getCapabilities)
        return self._capabilities

    def host(self) -> Host:
        return parse_capabilities(self.capabilities(), source=self.uri)

    def host_caps(self) -> HostCaps:
        """What the host CPU itself says (nested KVM), readable on read-only connections too."""
        return capabilities_caps(self.capabilities(), source=f"{self.uri} capabilities")

    def domcaps_xml(self, guest: GuestSpec | None = None) -> str:
        """``virsh domcapabilities`` for the guest's arch/machine/virttype (host defaults without one)."""
        args = (
            None,
            guest.arch if guest else None,
            guest.machine if guest else None,
            guest.domain_type if guest else None,
            0,
        )
        xml: str = self.call("getDomainCapabilities", self.raw.getDomainCapabilities, *args)
        return xml

    def caps(self, guest: GuestSpec | None = None) -> HostCaps | None:
        """domcapabilities + the host CPU + the local probes; without domcapabilities (a connection not
        allowed to read them) the rest, with ``domcaps_problem`` saying why."""
        try:
            domcaps: HostCaps | None = parse_domcapabilities(
                self.domcaps_xml(guest), source=f"{self.uri} domcapabilities"
            )
        except LibvirtError as err:
            self.domcaps_problem = str(err)
            domcaps = None
        emulator = domcaps.emulator if domcaps is not None else None
        probes = probe_host_caps(Path("/"), emulator=emulator) if is_local(self.uri) else None
        return merge_caps(domcaps, self.host_caps(), probes)

    def lookup(self, name: str) -> Any:
        return self.call("lookupByName", self.raw.lookupByName, name, domain=name)

    def ncpus(self) -> int:
        ncpus, _map, _online = self.call("getCPUMap", self.raw.getCPUMap, 0)
        return int(ncpus)

    def guest(self, dom: Any, *, inactive: bool = False) -> GuestSpec:
        name = dom.name()
        flags = self.lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        xml = self.call("XMLDesc", dom.XMLDesc, flags, domain=name)
        guest = read_guest(xml, source=f"libvirt:{name}")
        active = bool(self.call("isActive", dom.isActive, domain=name))
        return replace(guest, running=active) if active else guest

    def tenants(self) -> tuple[GuestSpec, ...]:
        """Every defined domain; running ones carry their live pins."""
        out: list[GuestSpec] = []
        for dom in self.call("listAllDomains", self.raw.listAllDomains, 0):
            guest = self.guest(dom)
            out.append(self._live_pins(dom, guest) if guest.running else guest)
        return tuple(sorted(out, key=lambda g: g.name))

    def _live_pins(self, dom: Any, guest: GuestSpec) -> GuestSpec:
        """Overlay pins moved at runtime (``virsh vcpupin --live``) that the XML may not show.

        libvirt reports an unpinned vCPU as pinned to every host CPU, so only strict subsets count.
        """
        name, live = guest.name, self.lv.VIR_DOMAIN_AFFECT_LIVE
        every = CpuSet.range(0, self.ncpus() - 1)
        vmaps = self.call("vcpuPinInfo", dom.vcpuPinInfo, live, domain=name)
        vcpupins = list(guest.vcpupins)
        for vcpu, cpumap in enumerate(vmaps):
            cpus = _from_map(cpumap)
            if cpus != every and cpus != guest.pin_of(vcpu):
                vcpupins = [p for p in vcpupins if p.vcpu != vcpu] + [VcpuPin(vcpu=vcpu, cpus=cpus)]
        emu = _from_map(self.call("emulatorPinInfo", dom.emulatorPinInfo, live, domain=name))
        iopins = list(guest.iothreadpins)
        for iothread, cpumap in self.call("ioThreadInfo", dom.ioThreadInfo, live, domain=name) or ():
            cpus = _from_map(cpumap)
            if cpus != every:
                iopins = [p for p in iopins if p.iothread != iothread] + [
                    IOThreadPin(iothread=iothread, cpus=cpus)
                ]
        return replace(
            guest,
            vcpupins=tuple(sorted(vcpupins, key=lambda p: p.vcpu)),
            emulatorpin=emu if emu != every else guest.emulatorpin,
            iothreadpins=tuple(sorted(iopins, key=lambda p: p.iothread)),
        )

    # -- writes (``vmtune.service.apply_domain`` runs them in order) -----------------------------------
    def domain_xml(self, name: str, *, inactive: bool) -> str:
        """The persistent definition (``inactive``) or the running guest's live XML."""
        dom = self.lookup(name)
        flags = self.lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        xml: str = self.call("XMLDesc", dom.XMLDesc, flags, domain=name)
        return xml

    def define_validated(self, name: str, xml: str) -> None:
        """``defineXMLFlags`` with ``VIR_DOMAIN_DEFINE_VALIDATE``: libvirt checks its own RelaxNG schema."""
        flags = self.lv.VIR_DOMAIN_DEFINE_VALIDATE
        self.call("defineXMLFlags (validate)", self.raw.defineXMLFlags, xml, flags, domain=name)

    def restore_definition(self, name: str, xml: str) -> None:
        """Put a definition back as it was (no validation: it is libvirt's own earlier output)."""
        self.call("defineXML (rollback)", self.raw.defineXML, xml, domain=name)

    def is_running(self, name: str) -> bool:
        dom = self.lookup(name)
        return bool(self.call("isActive", dom.isActive, domain=name))

    def repin(self, name: str, plan: Plan) -> tuple[str, ...]:
        """Move the running guest's threads to the plan's pins now (and in its definition)."""
        return _repin(self, self.lookup(name), plan)


def _from_map(cpumap: Any) -> CpuSet:
    return CpuSet(i for i, on in enumerate(cpumap) if on)


def _to_map(cpus: CpuSet, ncpus: int) -> tuple[bool, ...]:
    return tuple(i in cpus for i in range(max(ncpus, cpus.last() + 1 if cpus else 0)))


@contextlib.contextmanager
def connect(uri: str, *, readonly: bool = False) -> Iterator[Connection]:
    lv = import_libvirt()
    # libvirt prints every error to stderr by default as well; we report it once, ourselves
    lv.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        raw = lv.openReadOnly(uri) if readonly else lv.open(uri)
    except lv.libvirtError as err:
        raise LibvirtError(f"connect to {uri}: {err.get_error_message() or err}") from None
    try:
        yield Connection(uri, raw, lv)
    finally:
        with contextlib.suppress(lv.libvirtError):
            raw.close()


def read_domcaps(uri: str) -> tuple[str | None, str]:
    """domcapabilities XML of ``uri`` (host defaults) and the connection that gave it, or (None, why).

    libvirt 9 refuses ``virConnectGetDomainCapabilities`` on a read-only connection, so a read-write one is
    tried first (root may open it; other users as libvirt's polkit rules allow), then a read-only one.
    """
    problems: list[str] = []
    for readonly in (False, True):
        kind = "read-only" if readonly else "read-write"
        try:
            with connect(uri, readonly=readonly) as conn:
                return conn.domcaps_xml(), kind
        except LibvirtError as err:
            problems.append(f"{kind}: {err}")
    return None, "; ".join(problems)


def live_domcaps(uri: str, warn: Callable[[str], None]) -> HostCaps | None:
    """``read_domcaps`` parsed; when they can't be had, ``warn`` gets why and None is returned (Hyper-V
    support unknown: the planner then writes only what every KVM host provides)."""
    xml, how = read_domcaps(uri)
    if xml is None:
        warn(f"domcapabilities of {uri} not readable ({how}); Hyper-V support is unknown")
        return None
    return parse_domcapabilities(xml, source=f"{uri} domcapabilities ({how})")


def open_host(uri: str) -> Host:
    with connect(uri, readonly=True) as conn:
        return conn.host()


def running_guests(uri: str, name: str | None = None) -> tuple[GuestSpec, ...]:
    """The live definition of running domain ``name`` (or of every running domain)."""
    with connect(uri, readonly=True) as conn:
        if name is not None:
            dom = conn.lookup(name)
            guest = conn.guest(dom)
            if not guest.running:
                raise InputError(f"--domain {name}: not running on {uri}, nothing to verify")
            return (guest,)
        flags = conn.lv.VIR_CONNECT_LIST_DOMAINS_ACTIVE
        doms = conn.call("listAllDomains", conn.raw.listAllDomains, flags)
        return tuple(sorted((conn.guest(d) for d in doms), key=lambda g: g.name))


def qemu_pid(name: str, *, run_dir: Path = Path("/run/libvirt/qemu")) -> int | None:
    """The QEMU pid libvirt recorded for a running guest (local hosts only)."""
    try:
        text = (run_dir / f"{name}.pid").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _emulator_helpers(name: str, cpus: CpuSet) -> tuple[str, ...]:
    """Give QEMU's other emulator threads the new emulator pin too (local guests only).

    libvirt's ``pinEmulator`` sets the emulator cgroup's cpuset and the affinity of QEMU's *main* thread
    only. Narrowing is enforced on every thread by the cpuset, but when the pin *widens* (CPU 1 -> 0-1)
    the helper threads (``call_rcu``, ``IO mon_iothread``, worker threads) keep their old affinity mask
    until the guest restarts, and ``vmtune verify`` reports that as drift. ``taskset -a`` is what an
    operator would run; this is the same sched_setaffinity per thread.
    """

    pid = qemu_pid(name)
    if pid is None:
        return ()
    moved: list[str] = []
    for thread in read_threads(pid):
        if thread.kind is not ThreadKind.EMULATOR or thread.tid == pid or thread.affinity == cpus:
            continue
        try:
            os.sched_setaffinity(thread.tid, set(cpus))
        except OSError:
            continue  # the thread exited, or the kernel refused: verify will show it
        moved.append(thread.name)
    if not moved:
        return ()
    return (f"emulator helper threads {', '.join(sorted(set(moved)))} -> {cpus} (sched_setaffinity)",)


def _repin(conn: Connection, dom: Any, plan: Plan) -> tuple[str, ...]:
    lv, name = conn.lv, dom.name()
    flags = lv.VIR_DOMAIN_AFFECT_LIVE | lv.VIR_DOMAIN_AFFECT_CONFIG
    ncpus = conn.ncpus()
    done: list[str] = []

    def pin(op: str, fn: Callable[..., Any], *ids: int, cpus: CpuSet, what: str) -> None:
        conn.call(op, fn, *ids, _to_map(cpus, ncpus), flags, domain=name)
        done.append(f"{what} -> {cpus}")

    live_vcpus = len(conn.call("vcpuPinInfo", dom.vcpuPinInfo, lv.VIR_DOMAIN_AFFECT_LIVE, domain=name))
    for vp in plan.vcpupins or ():
        if vp.vcpu >= live_vcpus:
            continue  # a vCPU the running guest doesn't have yet: applies at the next start
        pin(f"pinVcpuFlags vcpu {vp.vcpu}", dom.pinVcpuFlags, vp.vcpu, cpus=vp.cpus, what=f"vcpu {vp.vcpu}")
    if plan.emulatorpin is not None:
        pin("pinEmulator", dom.pinEmulator, cpus=plan.emulatorpin, what="emulator")
        if is_local(conn.uri):
            done.extend(_emulator_helpers(name, plan.emulatorpin))
    live_iothreads = {i for i, _ in conn.call("ioThreadInfo", dom.ioThreadInfo, lv.VIR_DOMAIN_AFFECT_LIVE,
                                                 domain=name) or ()}  # fmt: skip
    for io in plan.iothreadpins or ():
        if io.iothread not in live_iothreads:
            continue
        what = f"iothread {io.iothread}"
        pin(f"pinIOThread {io.iothread}", dom.pinIOThread, io.iothread, cpus=io.cpus, what=what)
    return tuple(done)
