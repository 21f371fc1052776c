"""``--isolate-host`` and ``--power-idle`` through the hook, on a cgroup v2 / procfs / sysfs test root laid
out as the kernel does (``isolation_roots``): what each file holds before, during and after a guest's life,
several guests at once, a hook killed between two writes, and journals another user could have written."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isolation_roots import NS, make_root, snapshot, status_for
from vmtune.adapters.hookenv import HookPaths
from vmtune.adapters.isolation import load_journal
from vmtune.core.guest import GuestSpec
from vmtune.errors import InputError
from vmtune.hook import run_hook

SRC = Path(__file__).resolve().parents[1] / "src"


def guest(name: str, pins: list[int], *, attrs: str = "isolate-host='yes'", device: str = "") -> bytes:
    hostdev = ""
    if device:
        bus, rest = device.split(":")[1], device.split(":")[2]
        slot, fn = rest.split(".")
        hostdev = (
            "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
            f"<address domain='0x0000' bus='0x{bus}' slot='0x{slot}' function='0x{fn}'/></source></hostdev>"
        )
    vcpupins = "".join(f"<vcpupin vcpu='{i}' cpuset='{c}'/>" for i, c in enumerate(pins))
    return (
        f"<domain type='kvm'><name>{name}</name><metadata><vmtune:tuning xmlns:vmtune='{NS}' "
        f"profile='latency' {attrs}/></metadata><memory unit='MiB'>512</memory>"
        f"<vcpu placement='static'>{len(pins)}</vcpu>"
        f"<cputune>{vcpupins}</cputune><os><type arch='x86_64' machine='pc'>hvm</type></os>"
        f"<devices>{hostdev}<memballoon model='none'/></devices></domain>"
    ).encode()


def hook(paths: HookPaths, name: str, op: str, subop: str, xml: bytes) -> tuple[int, str]:
    err = io.StringIO()
    rc = run_hook([name, op, subop, "-"], io.BytesIO(xml), io.BytesIO(), err, paths=paths)
    return rc, err.getvalue()


def start(paths: HookPaths, name: str, xml: bytes) -> None:
    """prepare begin, then libvirt's status file, then started begin: what a guest start runs."""
    assert hook(paths, name, "prepare", "begin", xml) == (0, "")
    status_for(paths, name, xml)
    assert hook(paths, name, "started", "begin", xml)[0] == 0


def stop(paths: HookPaths, name: str, xml: bytes) -> None:
    (paths.status_dir / f"{name}.xml").unlink()
    assert hook(paths, name, "release", "end", xml)[0] == 0


def text(path: Path) -> str:
    return path.read_text()


def changed(before: dict[str, bytes], after: dict[str, bytes], root: Path) -> dict[str, tuple[bytes, bytes]]:
    return {
        str(Path(k).relative_to(root)): (before.get(k, b""), v)
        for k, v in after.items()
        if before.get(k) != v
    }


@pytest.fixture
def paths(tmp_path: Path) -> HookPaths:
    return make_root(tmp_path)


def test_a_guest_life_confines_then_restores_every_byte(paths: HookPaths, tmp_path: Path) -> None:
    before = snapshot(paths)
    xml = guest("g1", [2, 3], device="0000:41:00.0")
    start(paths, "g1", xml)
    during = changed(before, snapshot(paths), tmp_path)
    # dual-ht-adjacent: CPUs 0-31, node 1 = 16-31; the guest holds 2-3
    assert during == {
        "cgroup/system.slice/cpuset.cpus": (b"\n", b"0-1,4-31\n"),
        "cgroup/user.slice/cpuset.cpus": (b"0-31\n", b"0-1,4-31\n"),
        "cgroup/init.scope/cpuset.cpus": (b"\n", b"0-1,4-31\n"),
        "proc/irq/0/smp_affinity_list": (b"0-31\n", b"0-1,4-31\n"),
        "proc/irq/9/smp_affinity_list": (b"0-31\n", b"0-1,4-31\n"),
        # the passthrough device's MSI vectors go to the housekeeping CPUs of its node
        "proc/irq/120/smp_affinity_list": (b"0-31\n", b"16-31\n"),
        "proc/irq/121/smp_affinity_list": (b"0-31\n", b"16-31\n"),
        "proc/irq/default_smp_affinity": (b"ffffffff\n", b"fffffff3\n"),
        "root/sys/devices/virtual/workqueue/cpumask": (b"ffffffff\n", b"fffffff3\n"),
    }
    assert text(paths.cgroup_root / "machine.slice/cpuset.cpus") == "\n"  # libvirt's partition: untouched
    stop(paths, "g1", xml)
    assert snapshot(paths) == before
    assert not (paths.state_dir / "isolation.json").exists()


def test_several_guests_confine_to_the_union_and_lift_with_the_last(paths: HookPaths) -> None:
    before = snapshot(paths)
    one, two = guest("one", [2, 3]), guest("two", [8, 9])
    start(paths, "one", one)
    start(paths, "two", two)
    system = paths.cgroup_root / "system.slice/cpuset.cpus"
    assert text(system) == "0-1,4-7,10-31\n"
    stop(paths, "one", one)
    assert text(system) == "0-7,10-31\n"
    assert text(paths.procfs_root / "irq/9/smp_affinity_list") == "0-7,10-31\n"
    stop(paths, "two", two)
    assert snapshot(paths) == before


def test_guest_that_does_not_isolate_leaves_the_host_alone(paths: HookPaths) -> None:
    before = snapshot(paths)
    xml = guest("plain", [2, 3], attrs="")
    start(paths, "plain", xml)
    assert snapshot(paths) == before
    assert not (paths.state_dir / "isolation.json").exists()


def test_realtime_profile_isolates_by_default(paths: HookPaths) -> None:
    xml = guest("rt", [2, 3, 4], attrs="").replace(b"profile='latency'", b"profile='realtime'")
    assert hook(paths, "rt", "prepare", "begin", xml)[0] == 0
    assert text(paths.cgroup_root / "system.slice/cpuset.cpus") == "0-1,5-31\n"


def test_a_realtime_guest_with_isolate_host_no_leaves_the_host_alone(paths: HookPaths) -> None:
    """``--no-isolate-host`` (stored ``isolate-host='no'``) opts a realtime guest out of its profile's
    default: prepare begin changes no file and writes no journal."""
    before = snapshot(paths)
    xml = guest("rt", [2, 3, 4], attrs="isolate-host='no'").replace(
        b"profile='latency'", b"profile='realtime'"
    )
    assert hook(paths, "rt", "prepare", "begin", xml)[0] == 0
    assert snapshot(paths) == before
    assert not (paths.state_dir / "isolation.json").exists()


def test_a_holder_whose_guest_vanished_is_dropped_by_the_next_run(paths: HookPaths) -> None:
    """libvirtd died before ``release end``: no status file, no claim. The next hook run lifts it."""
    before = snapshot(paths)
    xml = guest("gone", [2, 3])
    start(paths, "gone", xml)
    (paths.status_dir / "gone.xml").unlink()
    other = guest("other", [5], attrs="")
    start(paths, "other", other)
    assert {k: v for k, v in snapshot(paths).items() if "status" not in k} == before


def test_libvirt_partition_is_never_confined(paths: HookPaths) -> None:
    import dataclasses

    with_machine = dataclasses.replace(paths, host_groups=("machine.slice", "system.slice"))
    rc, err = hook(with_machine, "g1", "prepare", "begin", guest("g1", [2]))
    assert rc == 0
    assert "'machine.slice' is libvirt's partition; never confined" in err
    assert text(paths.cgroup_root / "machine.slice/cpuset.cpus") == "\n"
    assert text(paths.cgroup_root / "system.slice/cpuset.cpus") == "0-1,3-31\n"


# -- a hook killed between two writes ---------------------------------------------------------------------
KILLER = """
import io, os, sys
from vmtune.adapters import isolation
from vmtune.hook import run_hook
limit, count = int(sys.argv[1]), [0]
real = isolation.reconcile.__kwdefaults__["write"]
def write(key, kind, value):
    if count[0] == limit:
        os._exit(137)  # as SIGKILL would: no cleanup, no journal update
    count[0] += 1
    return real(key, kind, value)
isolation.reconcile.__kwdefaults__["write"] = write
sys.exit(run_hook(sys.argv[2:], sys.stdin.buffer, io.BytesIO(), sys.stderr))
"""


def _env(paths: HookPaths) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "VMTUNE_HOOK_STATUS_DIR": str(paths.status_dir),
        "VMTUNE_HOOK_STATE_DIR": str(paths.state_dir),
        "VMTUNE_HOOK_SYSFS": str(paths.sysfs_root),
        "VMTUNE_HOOK_DOMCAPS": "",
        "VMTUNE_HOOK_CGROUP_ROOT": str(paths.cgroup_root),
        "VMTUNE_HOOK_HOST_GROUPS": ",".join(paths.host_groups),
        "VMTUNE_HOOK_PROCFS": str(paths.procfs_root),
        "VMTUNE_HOOK_SYSTEMD_DIR": str(paths.systemd_dir),
    }


def _killed(paths: HookPaths, after: int, argv: list[str], xml: bytes) -> int:
    res = subprocess.run([sys.executable, "-c", KILLER, str(after), *argv], input=xml, capture_output=True,
                         env=_env(paths), timeout=120, check=False)  # fmt: skip
    return res.returncode


def _recover(paths: HookPaths) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vmtune", "hook", "recover"], capture_output=True, text=True,
                          env=_env(paths), timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize("after", [0, 1, 4, 8])
def test_killed_prepare_is_finished_by_recover_and_undone_by_release(
    paths: HookPaths, tmp_path: Path, after: int
) -> None:
    before = snapshot(paths)
    xml = guest("g1", [2, 3], device="0000:41:00.0")
    assert _killed(paths, after, ["g1", "prepare", "begin", "-"], xml) == 137
    assert load_journal(paths).saved, "the journal was written before the first write"
    res = _recover(paths)
    assert res.returncode == 0, res.stderr
    assert "isolating guests: g1" in res.stderr  # its claim says it is still starting
    assert text(paths.cgroup_root / "user.slice/cpuset.cpus") == "0-1,4-31\n"
    assert text(paths.procfs_root / "irq/120/smp_affinity_list") == "16-31\n"
    assert hook(paths, "g1", "release", "end", xml)[0] == 0
    assert snapshot(paths) == before


@pytest.mark.parametrize("after", [0, 3, 7])
def test_killed_release_is_finished_by_recover(paths: HookPaths, after: int) -> None:
    before = snapshot(paths)
    xml = guest("g1", [2, 3], device="0000:41:00.0")
    start(paths, "g1", xml)
    (paths.status_dir / "g1.xml").unlink()
    assert _killed(paths, after, ["g1", "release", "end", "-"], xml) == 137
    assert snapshot(paths) != before
    res = _recover(paths)
    assert res.returncode == 0, res.stderr
    assert "isolating guests: none" in res.stderr
    assert snapshot(paths) == before


def test_killed_run_is_also_repaired_by_the_next_hook_run(paths: HookPaths) -> None:
    before = snapshot(paths)
    xml = guest("g1", [2, 3])
    start(paths, "g1", xml)
    (paths.status_dir / "g1.xml").unlink()
    assert _killed(paths, 2, ["g1", "release", "end", "-"], xml) == 137
    assert hook(paths, "x", "release", "end", b"")[0] == 0  # any guest's release end
    assert snapshot(paths) == before


# -- journals another user could have written -------------------------------------------------------------
def _prepared(paths: HookPaths) -> dict[str, bytes]:
    start(paths, "g1", guest("g1", [2, 3]))
    return snapshot(paths)


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (lambda j: j.chmod(0o666), "mode 666"),
        (lambda j: j.parent.chmod(0o777), "mode 777"),
        (lambda j: os.chown(j, 65534, -1), "owned by uid 65534"),
    ],
)
def test_journal_others_could_write_is_refused(paths: HookPaths, tamper: object, says: str) -> None:
    if os.geteuid() != 0 and "uid" in says:
        pytest.skip("chown to another user needs root")
    during = _prepared(paths)
    tamper(paths.state_dir / "isolation.json")  # type: ignore[operator]
    rc, err = hook(paths, "g1", "release", "end", b"")
    assert rc != 0
    assert len(err.strip().splitlines()) == 1 and says in err and "refusing" in err
    assert snapshot(paths) == during  # nothing applied


def test_start_with_a_journal_others_could_write_is_refused_before_anything(paths: HookPaths) -> None:
    during = _prepared(paths)
    (paths.state_dir / "isolation.json").chmod(0o646)
    rc, err = hook(paths, "g2", "prepare", "begin", guest("g2", [8]))
    assert rc != 0 and len(err.strip().splitlines()) == 1 and "refusing" in err
    assert snapshot(paths) == during
    assert not (paths.claims / "g2.xml").exists()


def test_started_begin_never_fails_the_start(paths: HookPaths) -> None:
    """libvirt stops a guest whose ``started`` hook fails: a journal the hook refuses is one line, exit 0."""
    _prepared(paths)
    (paths.state_dir / "isolation.json").chmod(0o666)
    xml = guest("rt", [8, 9], attrs="").replace(b"profile='latency'", b"profile='realtime'")
    rc, err = hook(paths, "rt", "started", "begin", xml)
    assert rc == 0
    assert len(err.strip().splitlines()) == 1 and "kvm-pit thread left alone" in err and "refusing" in err


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("/etc/passwd", "root::0:0\n", "is not a file the hook changes"),
        ("{cg}/../../etc/cpuset.cpus", "0\n", "is not a file the hook changes"),
        ("{cg}/machine.slice/cpuset.cpus", "0\n", "is not a file the hook changes"),
        ("{cg}/system.slice/cpuset.cpus", "0-1;reboot\n", "is not what that file takes"),
        ("{proc}/irq/9/smp_affinity_list", "x\n", "is not what that file takes"),
        ("{sys}/sys/devices/system/cpu/cpu0/online", "0\n", "is not a file the hook changes"),
        ("systemd:../../x.service", "0\n", "is not a systemd unit"),
    ],
)
def test_journal_entries_are_checked_not_trusted(paths: HookPaths, key: str, value: str, says: str) -> None:
    during = _prepared(paths)
    journal = paths.state_dir / "isolation.json"
    body = json.loads(journal.read_text())
    body["saved"][key.format(cg=paths.cgroup_root, proc=paths.procfs_root, sys=paths.sysfs_root)] = value
    journal.write_text(json.dumps(body))
    rc, err = hook(paths, "g1", "release", "end", b"")
    assert rc != 0 and says in err and len(err.strip().splitlines()) == 1
    assert snapshot(paths) == during
    with pytest.raises(InputError):
        load_journal(paths)


# -- power ------------------------------------------------------------------------------------------------
def test_power_idle_governor(tmp_path: Path) -> None:
    paths = make_root(tmp_path, cpufreq=True)
    cpufreq = paths.sysfs_root / "sys/devices/system/cpu"
    xml = guest("p", [0, 2, 3], attrs="power-idle='governor:powersave'")
    start(paths, "p", xml)
    governors = {c: text(cpufreq / f"cpu{c}/cpufreq/scaling_governor").strip() for c in (0, 1, 2, 3)}
    assert governors == {0: "schedutil", 1: "schedutil", 2: "performance", 3: "performance"}  # never CPU 0
    stop(paths, "p", xml)
    governors = {c: text(cpufreq / f"cpu{c}/cpufreq/scaling_governor").strip() for c in (0, 1, 2, 3)}
    assert governors == {0: "schedutil", 1: "schedutil", 2: "powersave", 3: "powersave"}
    # a guest that takes core 3 gets it back as it was before vmtune touched it
    plain = guest("next", [3], attrs="")
    start(paths, "next", plain)
    assert text(cpufreq / "cpu3/cpufreq/scaling_governor") == "schedutil\n"
    assert text(cpufreq / "cpu2/cpufreq/scaling_governor") == "powersave\n"


def test_power_idle_offline_brings_the_core_back_for_the_next_guest(tmp_path: Path) -> None:
    paths = make_root(tmp_path, cpufreq=True)
    cpus = paths.sysfs_root / "sys/devices/system/cpu"
    xml = guest("p", [4, 5], attrs="power-idle='offline'")
    start(paths, "p", xml)
    assert text(cpus / "cpu4/online") == "1\n"
    stop(paths, "p", xml)
    assert (text(cpus / "cpu4/online"), text(cpus / "cpu5/online")) == ("0\n", "0\n")
    again = guest("again", [4], attrs="")
    assert hook(paths, "again", "prepare", "begin", again) == (0, "")  # online before QEMU pins to it
    assert (text(cpus / "cpu4/online"), text(cpus / "cpu5/online")) == ("1\n", "0\n")
    # a guest without vmtune intent needs its CPUs online just the same
    foreign = guest("foreign", [5]).replace(b"<metadata>", b"<!--").replace(b"</metadata>", b"-->")
    assert hook(paths, "foreign", "prepare", "begin", foreign) == (0, "")
    assert text(cpus / "cpu5/online") == "1\n"


# -- the KVM PIT thread -----------------------------------------------------------------------------------
def test_started_begin_raises_the_pit_thread(paths: HookPaths) -> None:
    """A real process stands in for ``kvm-pit/<pid>`` (its comm is faked in the procfs test root): the
    scheduler calls are the kernel's, read back from the real /proc."""
    stand_in = subprocess.Popen(["sleep", "60"])
    try:
        (paths.procfs_root / str(stand_in.pid)).mkdir()
        (paths.procfs_root / str(stand_in.pid) / "comm").write_text("kvm-pit/4242\n")
        online = sorted(os.sched_getaffinity(0))
        xml = guest("rt", [online[-1], online[0]], attrs="").replace(
            b"profile='latency'", b"profile='realtime'"
        )
        status_for(paths, "rt", xml, pid=4242)
        rc, err = hook(paths, "rt", "started", "begin", xml)
        assert rc == 0  # never fails the start
        stat = Path(f"/proc/{stand_in.pid}/stat").read_text().rsplit(")", 1)[1].split()
        policy, priority = int(stat[38]), int(stat[37])  # fields 41 and 40 of proc(5)
        allowed = next(ln for ln in Path(f"/proc/{stand_in.pid}/status").read_text().splitlines()
                       if ln.startswith("Cpus_allowed_list")).split()[1]  # fmt: skip
        record = load_journal(paths).threads["rt"]
        if err:
            assert "SCHED_FIFO 2 refused" in err and len(err.strip().splitlines()) == 1
            assert (policy, record["policy"]) == (0, "other")
        else:
            assert (policy, priority) == (os.SCHED_FIFO, 2)
            assert record["policy"] == "fifo"
        assert allowed == str(online[-1])  # vCPU 0's CPU
        assert record["tid"] == stand_in.pid and record["comm"] == "kvm-pit/4242"
        from vmtune.core.verify.sched import sched_rows

        names = {os.SCHED_OTHER: "other", os.SCHED_FIFO: "fifo"}
        seen = ("kvm-pit/4242", names[policy], priority)
        rows = sched_rows(main=None, iothreads=[], pit=seen, emulatorsched=None, iothreadsched=(),
                          vcpusched=_running(xml).vcpusched)  # fmt: skip
        print(f"\nkvm-pit stand-in {stand_in.pid}: /proc stat policy {policy} rt_priority {priority}, "
              f"Cpus_allowed_list {allowed}; verify: {rows}")  # fmt: skip
        assert [(r[0], r[4]) for r in rows] == [("pit", bool(err))]
    finally:
        stand_in.kill()
        stand_in.wait()


# -- verify -----------------------------------------------------------------------------------------------
def _running(xml: bytes) -> GuestSpec:
    from vmtune.xmlmap.guest import read_guest

    return read_guest(xml, source="live")


def test_verify_rows_follow_the_intent_and_name_drift(paths: HookPaths) -> None:
    from vmtune.adapters.isoverify import host_isolation

    xml = guest("g1", [2, 3], device="0000:41:00.0")
    start(paths, "g1", xml)
    report = host_isolation(paths, [_running(xml)])
    assert not report.drifts and report.leftover == 0
    seen = {r.what: (r.expected, r.observed, r.status.value) for r in report.rows}
    assert seen["host group system.slice"] == ("0-1,4-31", "0-1,4-31", "ok")
    assert seen["irq 120"] == ("16-31", "16-31", "ok")
    assert seen["workqueue cpumask"] == ("fffffff3", "fffffff3", "ok")
    # a host tool widens user.slice behind the hook's back
    (paths.cgroup_root / "user.slice/cpuset.cpus").write_text("0-31\n")
    drifted = host_isolation(paths, [_running(xml)])
    assert [d.what for d in drifted.drifts] == ["isolation"]
    assert drifted.drifts[0].message.startswith("host group user.slice: ")
    assert "holds '0-31', isolation wants '0-1,4-31'" in drifted.drifts[0].message


def test_verify_counts_what_a_dead_release_left_behind(paths: HookPaths) -> None:
    from vmtune.adapters.isoverify import host_isolation

    xml = guest("g1", [2, 3])
    start(paths, "g1", xml)
    (paths.status_dir / "g1.xml").unlink()
    assert _killed(paths, 2, ["g1", "release", "end", "-"], xml) == 137
    assert host_isolation(paths, []).leftover > 0
    assert _recover(paths).returncode == 0
    assert host_isolation(paths, []).leftover == 0


# -- systemd ----------------------------------------------------------------------------------------------
SYSTEMCTL = """#!/bin/sh
# a stand-in for systemctl: remembers AllowedCPUs per unit in $UNITS, logs each call
echo "$@" >> "$UNITS/calls"
if [ "$1" = show ]; then cat "$UNITS/$4" 2>/dev/null; exit 0; fi
if [ "$1" = set-property ]; then printf '%s\\n' "${4#AllowedCPUs=}" > "$UNITS/$3"; exit 0; fi
exit 1
"""


def test_with_systemd_units_get_allowed_cpus_and_their_old_value_back(
    paths: HookPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No systemd on this machine: a stand-in ``systemctl`` records what the hook asks of it."""
    import dataclasses

    units, bindir = tmp_path / "units", tmp_path / "bin"
    units.mkdir()
    bindir.mkdir()
    (bindir / "systemctl").write_text(SYSTEMCTL)
    (bindir / "systemctl").chmod(0o755)
    (units / "user.slice").write_text("0-31\n")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("UNITS", str(units))
    (tmp_path / "systemd").mkdir()
    booted = dataclasses.replace(paths, systemd_dir=tmp_path / "systemd")
    xml = guest("g1", [2, 3])
    start(booted, "g1", xml)
    assert text(units / "system.slice") == "0-1,4-31\n"
    assert text(units / "user.slice") == "0-1,4-31\n"
    assert text(paths.cgroup_root / "system.slice/cpuset.cpus") == "\n"  # systemd writes it, not the hook
    stop(booted, "g1", xml)
    assert (text(units / "system.slice"), text(units / "user.slice")) == ("\n", "0-31\n")
    calls = text(units / "calls").splitlines()
    assert "set-property --runtime system.slice AllowedCPUs=0-1,4-31" in calls
    assert "set-property --runtime system.slice AllowedCPUs=" in calls  # unset again: inherit, as before
    assert "set-property --runtime user.slice AllowedCPUs=0-31" in calls


# -- invariant --------------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sets(st.integers(1, 10), min_size=1, max_size=4)),
        min_size=1,
        max_size=6,
    )
)
def test_any_start_stop_order_keeps_the_union_free_and_ends_byte_for_byte(
    tmp_path_factory: pytest.TempPathFactory, events: list[tuple[str, set[int]]]
) -> None:
    """Guests start (or, when already running, stop) in any order: the host groups always hold the online
    CPUs less every running isolating guest's, and once all stopped every file is as before. Guest a pins
    within 1-10, b within 11-20, c within 21-30 (the hook refuses colliding pins, VT104)."""
    from vmtune.cpuset import CpuSet

    paths = make_root(tmp_path_factory.mktemp("inv"))
    before = snapshot(paths)
    running: dict[str, tuple[bytes, set[int]]] = {}
    for name, low in events:
        if name in running:
            stop(paths, name, running.pop(name)[0])
        else:
            cpus = {c + 10 * "abc".index(name) for c in low}
            xml = guest(name, sorted(cpus))
            assert hook(paths, name, "prepare", "begin", xml)[0] == 0
            status_for(paths, name, xml)
            running[name] = (xml, cpus)
        held = CpuSet().union(*(CpuSet(c) for _, c in running.values()))
        want = f"{CpuSet.range(0, 31) - held}\n" if held else None
        system = text(paths.cgroup_root / "system.slice/cpuset.cpus")
        assert system == (want or "\n")
    for name, (xml, _) in list(running.items()):
        stop(paths, name, xml)
    assert snapshot(paths) == before


def test_settings_come_from_the_hook_environment() -> None:
    paths = HookPaths.from_env({"VMTUNE_HOOK_CGROUP_ROOT": "/t/cg", "VMTUNE_HOOK_HOST_GROUPS": " a , b/c ,",
                                "VMTUNE_HOOK_PROCFS": "/t/proc"})  # fmt: skip
    assert (paths.cgroup_root, paths.host_groups, paths.procfs_root) == (
        Path("/t/cg"),
        ("a", "b/c"),
        Path("/t/proc"),
    )
    default = HookPaths.from_env({})
    assert default.cgroup_root == Path("/sys/fs/cgroup")
    assert default.host_groups == ("system.slice", "user.slice", "init.scope")
    assert default.procfs_root == Path("/proc")
