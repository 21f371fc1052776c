"""`vmtune apply --connect --domain` / `--live` / `verify` against the real libvirtd, and the hook filter.

The plans below are those of a host with CPUs 0-1 (2 cores, no SMT) in one node; on any other shape the
module skips and says what the host has. What an operator gets on such a host, and what is asserted:

* 1 vCPU, ``--profile latency``: CPU 0 stays housekeeping (vmtune's default reserve), vCPU 0 -> CPU 1,
  emulator isolated on CPU 0;
* 2 vCPUs, ``--profile latency``: refused (exit 3, needs 2 whole cores, 1 free), nothing defined;
  with ``--reserve ''`` the operator gives both CPUs to the guest: vCPU n -> CPU n, and the emulator
  has nowhere to be isolated, so it keeps floating over 0-1;
* 4 vCPUs: refused (exit 3) under isolate even with ``--reserve ''`` (4 needed, 2 free): vmtune never
  stacks dedicated vCPUs; the untouched guest still runs, its 4 vCPU threads float over 0-1;
* 4 vCPUs, ``--cpu-policy shared`` (overcommit, Nova's ``hw:cpu_policy=shared``): every vCPU and the
  emulator get the pool - CPU 1 beside the default reserve, then 0-1 with ``--reserve '' --live`` on the
  running guest - and each thread's measured affinity is exactly that pool.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from e2ehelp import URI, Libvirt, emulator_affinity, host_shape, record, vcpu_affinity, vmtune
from lxml import etree

SHAPE, EXPECTED_SHAPE = host_shape()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not EXPECTED_SHAPE, reason=f"plans written for CPUs 0-1 on 2 cores, 1 node; here {SHAPE}"
    ),
]


def pins(lv: Libvirt, name: str, *, inactive: bool = True) -> tuple[dict[int, str], str | None]:
    flags = lv.lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0
    root = etree.fromstring(lv.conn.lookupByName(name).XMLDesc(flags).encode())
    vcpus = {int(p.get("vcpu")): p.get("cpuset") for p in root.iterfind("cputune/vcpupin")}
    emu = root.find("cputune/emulatorpin")
    return vcpus, emu.get("cpuset") if emu is not None else None


def report(name: str, what: str) -> None:
    """Measured numbers go to the test log (pytest -s, or the -rA summary) for the record."""
    record(f"{name}: {what}; emulator threads {sorted(emulator_affinity(name))}")


def start(lv: Libvirt, name: str) -> None:
    lv.conn.lookupByName(name).create()


def test_latency_1vcpu_measured_equals_plan(libvirt_session: Libvirt, make_guest) -> None:  # type: ignore[no-untyped-def]
    name = make_guest(vcpus=1)
    res = vmtune("apply", "--connect", URI, "--domain", name, "--profile", "latency")
    assert res.returncode == 0, res.stderr
    assert "+    <vcpupin vcpu='0' cpuset='1'/>" in res.stdout  # the diff is the product
    vcpus, emu = pins(libvirt_session, name)
    assert (vcpus, emu) == ({0: "1"}, "0")
    start(libvirt_session, name)
    measured = vcpu_affinity(name)
    report(name, f"plan vcpupin {vcpus} emulatorpin {emu}; measured vCPU {measured}")
    assert measured == {0: "1"}
    assert emulator_affinity(name) == {"0"}
    ver = vmtune("verify", "--connect", URI, "--domain", name)
    assert ver.returncode == 0, ver.stdout + ver.stderr
    assert re.search(r"vcpu 0\s+1 other\s+1 other\s+ok", ver.stdout), ver.stdout


def test_latency_2vcpu_refused_then_reserve_empty(libvirt_session: Libvirt, make_guest) -> None:  # type: ignore[no-untyped-def]
    name = make_guest(vcpus=2)
    before = libvirt_session.conn.lookupByName(name).XMLDesc(0)
    res = vmtune("apply", "--connect", URI, "--domain", name, "--profile", "latency")
    assert res.returncode == 3, res.stderr
    assert "needs 2 vCPU(s)" in res.stderr and "free whole cores: node 0: 1" in res.stderr
    assert res.stdout == ""
    assert libvirt_session.conn.lookupByName(name).XMLDesc(0) == before  # nothing defined on failure

    res = vmtune("apply", "--connect", URI, "--domain", name, "--profile", "latency", "--reserve", "")
    assert res.returncode == 0, res.stderr
    vcpus, emu = pins(libvirt_session, name)
    assert vcpus == {0: "0", 1: "1"}
    assert emu is None  # no free CPU left to isolate the emulator on: left alone, with a warning
    assert "emulator" in res.stderr
    start(libvirt_session, name)
    measured = vcpu_affinity(name)
    report(name, f"plan vcpupin {vcpus} emulatorpin {emu}; measured vCPU {measured}")
    assert measured == vcpus
    assert emulator_affinity(name) == {"0-1"}
    ver = vmtune("verify", "--connect", URI, "--domain", name, "--json")
    assert ver.returncode == 0, ver.stdout + ver.stderr


def test_4vcpu_refused_and_untouched_guest_floats(libvirt_session: Libvirt, make_guest) -> None:  # type: ignore[no-untyped-def]
    name = make_guest(vcpus=4)
    before = libvirt_session.conn.lookupByName(name).XMLDesc(0)
    for extra in (
        (),
        ("--reserve", ""),
        ("--reserve", "", "--thread-policy", "prefer", "--emulator", "share"),
    ):
        res = vmtune("apply", "--connect", URI, "--domain", name, "--profile", "latency", *extra)
        assert res.returncode == 3, (extra, res.stderr)
        assert "needs 4 vCPU(s)" in res.stderr
    assert libvirt_session.conn.lookupByName(name).XMLDesc(0) == before
    start(libvirt_session, name)
    measured = vcpu_affinity(name)
    report(name, f"no plan (exit 3); measured vCPU {measured}")
    assert measured == {0: "0-1", 1: "0-1", 2: "0-1", 3: "0-1"}
    ver = vmtune("verify", "--connect", URI, "--domain", name)
    assert ver.returncode == 0 and "floating" in ver.stdout, ver.stdout


def test_live_repin_without_restart_and_drift(libvirt_session: Libvirt, make_guest) -> None:  # type: ignore[no-untyped-def]
    name = make_guest(vcpus=1)
    start(libvirt_session, name)
    assert vcpu_affinity(name) == {0: "0-1"}
    pid_before = (Path("/run/libvirt/qemu") / f"{name}.pid").read_text()
    res = vmtune("apply", "--connect", URI, "--domain", name, "--profile", "latency", "--live")
    assert res.returncode == 0, res.stderr
    assert "live now: vcpu 0 -> 1" in res.stderr and "live now: emulator -> 0" in res.stderr
    assert "needs a guest restart" in res.stderr  # topology, numatune and the CPU model wait for a restart
    assert (Path("/run/libvirt/qemu") / f"{name}.pid").read_text() == pid_before  # same QEMU, no restart
    measured = vcpu_affinity(name)
    report(name, f"live re-pin; measured vCPU {measured}")
    assert measured == {0: "1"}
    assert emulator_affinity(name) == {"0"}
    assert pins(libvirt_session, name, inactive=False) == ({0: "1"}, "0")  # live XML
    assert pins(libvirt_session, name) == ({0: "1"}, "0")  # and the config
    assert vmtune("verify", "--connect", URI, "--domain", name).returncode == 0
    # someone outside libvirt changes the vCPU thread (`chrt -b`); the cpuset cgroup keeps its CPU, but
    # not its policy: verify reads /proc, so it sees the drift. (sched_setaffinity to CPU 0 would fail
    # with EINVAL: libvirt's vcpu0 cpuset cgroup only holds CPU 1.)
    task_dir = Path(f"/proc/{pid_before.strip()}/task")
    tid = next(t.name for t in task_dir.iterdir() if (t / "comm").read_text().startswith("CPU 0/"))
    os.sched_setscheduler(int(tid), os.SCHED_BATCH, os.sched_param(0))
    ver = vmtune("verify", "--connect", URI, "--domain", name)
    assert ver.returncode == 5, ver.stdout + ver.stderr
    assert "drift: vCPU 0" in ver.stdout and "scheduler batch, expected other" in ver.stdout


def test_hook_migrate_begin_filter_on_this_host(libvirt_session: Libvirt, make_guest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The XML of a guest tuned on a big host arrives here: the hook re-plans it for these 2 CPUs."""
    name = make_guest(vcpus=1)
    assert vmtune("apply", "--connect", URI, "--domain", name, "--profile", "latency").returncode == 0
    xml = libvirt_session.conn.lookupByName(name).XMLDesc(libvirt_session.lv.VIR_DOMAIN_XML_MIGRATABLE)
    foreign = xml.replace("cpuset='1'", "cpuset='37'").replace(
        "<emulatorpin cpuset='0'", "<emulatorpin cpuset='36'"
    )
    # the source host needed no MSR 0x10a gate; CPU features are part of the guest's ABI, so the hook,
    # which moves only host binding, leaves the CPU exactly as it arrives
    foreign = foreign.replace("<feature policy='disable' name='arch-capabilities'/>", "")
    assert "cpuset='37'" in foreign
    env = {**os.environ, "VMTUNE_HOOK_STATE_DIR": str(tmp_path / "state")}
    res = vmtune("hook", name, "migrate", "begin", "-", stdin=foreign.encode(), env=env)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    out = etree.fromstring(res.stdout.encode())
    assert [p.get("cpuset") for p in out.iterfind("cputune/vcpupin")] == ["1"]
    assert out.find("cputune/emulatorpin").get("cpuset") == "0"  # type: ignore[union-attr]
    assert out.find("cpu/feature[@name='arch-capabilities']") is None
    # what the hook prints must be a definition libvirt accepts (validated against its schema)
    libvirt_session.conn.defineXMLFlags(res.stdout, libvirt_session.lv.VIR_DOMAIN_DEFINE_VALIDATE)
    # the same XML again: nothing to change, nothing printed (libvirt then keeps its own XML)
    again = vmtune("hook", name, "restore", "begin", "-", stdin=res.stdout.encode(), env=env)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def _shared_pool_matches(lv: Libvirt, name: str, pool: str, *, live: bool) -> None:
    """The XML pins every vCPU and the emulator to ``pool``, and the threads run exactly there."""
    vcpus, emu = pins(lv, name, inactive=not live)
    assert (vcpus, emu) == (dict.fromkeys(range(4), pool), pool)
    measured = vcpu_affinity(name)
    report(
        name,
        f"shared{' --live' if live else ''}: plan vcpupin {vcpus} emulatorpin {emu}; "
        f"measured vCPU {measured}",
    )
    assert measured == vcpus
    assert emulator_affinity(name) == {pool}
    ver = vmtune("verify", "--connect", URI, "--domain", name)
    assert ver.returncode == 0, ver.stdout + ver.stderr


def test_4vcpu_shared_pool_measured_equals_plan(libvirt_session: Libvirt, make_guest) -> None:  # type: ignore[no-untyped-def]
    name = make_guest(vcpus=4)
    res = vmtune("apply", "--connect", URI, "--domain", name, "--cpu-policy", "shared")
    assert res.returncode == 0, res.stderr
    start(libvirt_session, name)
    _shared_pool_matches(libvirt_session, name, "1", live=False)

    # the operator hands CPU 0 to the pool too, on the running guest: re-pinned now, no restart
    res = vmtune(
        "apply", "--connect", URI, "--domain", name, "--cpu-policy", "shared", "--reserve", "", "--live"
    )
    assert res.returncode == 0, res.stderr
    # libvirt's pinEmulator widens only QEMU's main thread; vmtune moves the helper threads too
    assert "emulator helper threads" in res.stdout + res.stderr
    _shared_pool_matches(libvirt_session, name, "0-1", live=True)
