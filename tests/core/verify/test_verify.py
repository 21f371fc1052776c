"""verify: /proc reading (a fake rooted procfs tree) and the pure plan-vs-observed comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmtune.adapters.procfs import hyperv_from_cmdline, read_process
from vmtune.core.guest import EmulatorSched, GuestSpec, HypervFeature, IOThreadSched, VcpuPin, VcpuSched
from vmtune.core.intent.model import Intent, Profile
from vmtune.core.plan import CpuPlan, NumaTunePlan, Plan
from vmtune.core.verify.compare import Status, ThreadKind, classify_thread, compare, expectation_from_guest
from vmtune.core.verify.readback import owned_mismatches
from vmtune.cpuset import CpuSet

# a real stat line of a vCPU thread from this machine, with policy (field 41) and rt_priority (40) patched
STAT = (
    "{tid} ({comm}) S 1 17188 17188 0 -1 138412096 253 0 0 0 4 2 0 0 20 0 6 0 52869 1334009856 6455 "
    "18446744073709551615 1 1 0 0 0 0 268444224 4096 17475 0 0 0 -1 1 {prio} {policy} 0 0 0 0 0 0 0 0 0 0 0"
)


def fake_qemu(root: Path, pid: int, threads: list[tuple[int, str, str, int, int]], numa: str = "") -> Path:
    """Write /proc/<pid>/task/<tid>/{comm,status,stat} (+ numa_maps, cmdline) under root."""
    proc = root / "proc"
    for tid, comm, allowed, policy, prio in threads:
        task = proc / str(pid) / "task" / str(tid)
        task.mkdir(parents=True)
        (task / "comm").write_text(comm + "\n")
        (task / "status").write_text(f"Name:\t{comm}\nCpus_allowed:\t3\nCpus_allowed_list:\t{allowed}\n")
        (task / "stat").write_text(STAT.format(tid=tid, comm=comm, policy=policy, prio=prio) + "\n")
    (proc / str(pid) / "numa_maps").write_text(numa)
    argv = [
        "/usr/bin/qemu-system-x86_64",
        "-name",
        "g",
        "-cpu",
        "host,hv-relaxed=on,hv-spinlocks=0x1fff,hv-vapic=off",
    ]
    (proc / str(pid) / "cmdline").write_text("\0".join(argv) + "\0")
    return proc


THREADS = [
    (100, "qemu-system-x86", "0", 0, 0),
    (101, "qemu-system-x86", "0", 0, 0),
    (102, "IO mon_iothread", "0", 0, 0),
    (103, "CPU 0/KVM", "1", 0, 0),
    (104, "CPU 1/KVM", "2", 1, 1),
    (105, "kvm-nx-lpage-re", "0-3", 0, 0),
    (106, "IO iothread1", "3", 0, 0),
]
NUMA = (
    "7f0000000000 bind:0 anon=32768 dirty=32768 N0=32768 kernelpagesize_kB=4\n"
    "7f8000000000 bind:0 file=/dev/hugepages/x huge dirty=64 N0=62 N1=2 kernelpagesize_kB=2048\n"
    "5616d0ea1000 default file=/usr/bin/qemu-system-x86_64 mapped=1015 N0=1015 kernelpagesize_kB=4\n"
)


def guest(**kw: object) -> GuestSpec:
    base: dict[str, object] = {
        "name": "g",
        "source": "libvirt:g",
        "vcpus": 2,
        "vcpupins": (VcpuPin(vcpu=0, cpus=CpuSet.parse("1")), VcpuPin(vcpu=1, cpus=CpuSet.parse("2"))),
        "emulatorpin": CpuSet.parse("0"),
        "vcpusched": (VcpuSched(vcpus=CpuSet.parse("1"), scheduler="fifo", priority=1),),
        "numatune_mode": "strict",
        "numatune_nodeset": CpuSet.parse("0"),
    }
    base.update(kw)
    return GuestSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "kind", "index"),
    [
        ("CPU 0/KVM", ThreadKind.VCPU, 0),
        ("CPU 13/TCG", ThreadKind.VCPU, 13),
        ("IO iothread2", ThreadKind.IOTHREAD, 2),
        ("IO mon_iothread", ThreadKind.EMULATOR, None),  # QEMU's monitor thread follows emulatorpin
        ("qemu-system-x86", ThreadKind.EMULATOR, None),
        ("call_rcu", ThreadKind.EMULATOR, None),
        ("kvm-nx-lpage-re", ThreadKind.KERNEL, None),
        ("kvm-pit/17188", ThreadKind.KERNEL, None),
    ],
)
def test_classify_thread(name: str, kind: ThreadKind, index: int | None) -> None:
    assert classify_thread(name) == (kind, index)


def test_read_process_from_rooted_proc(tmp_path: Path) -> None:
    proc = fake_qemu(tmp_path, 4242, THREADS, NUMA)
    obs = read_process("g", 4242, proc=proc)
    by_tid = {t.tid: t for t in obs.threads}
    assert by_tid[103].kind is ThreadKind.VCPU and by_tid[103].affinity == CpuSet.parse("1")
    assert (by_tid[104].policy, by_tid[104].priority) == ("fifo", 1)
    assert by_tid[106].kind is ThreadKind.IOTHREAD and by_tid[106].index == 1
    # 32768 + 1015 pages of 4 KiB and 62 huge pages of 2 MiB on node 0; 2 huge pages on node 1
    assert obs.memory_kib == ((0, (32768 + 1015) * 4 + 62 * 2048), (1, 2 * 2048))
    assert obs.hyperv == ("relaxed", "spinlocks")


def test_hyperv_from_cmdline_ignores_off_and_other_args() -> None:
    assert hyperv_from_cmdline(["qemu", "-cpu", "qemu64,hv-passthrough=on"]) == ("passthrough",)
    assert hyperv_from_cmdline(["qemu", "-machine", "hv-relaxed=on"]) == ()
    assert hyperv_from_cmdline(["qemu", "-cpu", "host,hv-ipi=off"]) == ()


def test_compare_all_ok(tmp_path: Path) -> None:
    obs = read_process("g", 7, proc=fake_qemu(tmp_path, 7, THREADS[:5] + THREADS[6:], NUMA))
    rep = compare(expectation_from_guest(guest()), obs)
    assert rep.ok, rep.drifts
    statuses = {r.what: r.status for r in rep.rows}
    assert statuses == {
        "vcpu 0": Status.OK,
        "vcpu 1": Status.OK,
        "emulator": Status.OK,
        "iothread 1": Status.FLOATING,
        "memory": Status.OK,  # 4 MiB of 259 MiB on node 1: inside the 2% slack
        "hyperv": Status.OK,  # XML asks for none; QEMU has relaxed,spinlocks: more is no drift
    }


def test_compare_names_each_drift(tmp_path: Path) -> None:
    threads = [
        (100, "qemu-system-x86", "0-3", 0, 0),  # emulator escaped its pin
        (103, "CPU 0/KVM", "1", 3, 0),  # batch instead of other
        (104, "CPU 1/KVM", "1-2", 0, 0),  # wrong CPUs and not fifo
    ]
    numa = "7f0000000000 bind:0 anon=100 N0=50 N1=50 kernelpagesize_kB=4\n"
    rep = compare(
        expectation_from_guest(guest()), read_process("g", 8, proc=fake_qemu(tmp_path, 8, threads, numa))
    )
    messages = [d.message for d in rep.drifts]
    assert any("vCPU 0" in m and "scheduler batch, expected other" in m for m in messages)
    assert any("vCPU 1" in m and "runs on CPUs 1-2, pinned to 2" in m for m in messages)
    assert any("vCPU 1" in m and "scheduler other, expected fifo:1" in m for m in messages)
    assert any("emulator" in m and "0-3" in m for m in messages)
    assert any("outside nodes 0" in m for m in messages)
    assert not rep.ok


def test_missing_vcpu_thread_is_drift(tmp_path: Path) -> None:
    obs = read_process("g", 9, proc=fake_qemu(tmp_path, 9, THREADS[:4]))
    rep = compare(expectation_from_guest(guest(vcpusched=())), obs)
    assert [d.what for d in rep.drifts] == ["vcpu 1"]


def test_realtime_intent_without_fifo_is_shown_not_drift(tmp_path: Path) -> None:
    """On a cgroup-v1 host with rt_runtime 0 the plan leaves FIFO out (VT406): verify says so."""
    g = guest(vcpusched=(), intent=Intent(profiles=(Profile.REALTIME,)))
    obs = read_process("g", 10, proc=fake_qemu(tmp_path, 10, [*THREADS[:4], (104, "CPU 1/KVM", "2", 0, 0)]))
    rep = compare(expectation_from_guest(g), obs)
    assert rep.ok
    assert any("no fifo/rr <vcpusched>" in n and "vCPUs run other" in n for n in rep.notes)


def test_hyperv_on_qemu_cmdline_is_compared(tmp_path: Path) -> None:
    g = guest(
        vcpusched=(),
        hyperv_mode="custom",
        hyperv=(HypervFeature(name="relaxed"), HypervFeature(name="vpindex")),
    )
    rep = compare(expectation_from_guest(g), read_process("g", 11, proc=fake_qemu(tmp_path, 11, THREADS[:5])))
    assert [d.message for d in rep.drifts if d.what == "hyperv"] == [
        "QEMU runs without enlightenments vpindex"
    ]


# -- read-back after define -----------------------------------------------------------------------------


def test_owned_mismatches_is_semantic() -> None:
    plan = Plan(
        vcpupins=(VcpuPin(vcpu=0, cpus=CpuSet.parse("1")),),
        emulatorpin=CpuSet.parse("0"),
        numatune=NumaTunePlan(mode="strict", nodeset=CpuSet.parse("0")),
        cpu=CpuPlan(mode="host-passthrough"),
        intent=Intent(profiles=(Profile.LATENCY,)),
    )
    back = GuestSpec(
        name="g",
        source="libvirt:g",
        vcpupins=(VcpuPin(vcpu=0, cpus=CpuSet.parse("1")),),
        emulatorpin=CpuSet.parse("0"),
        numatune_mode="strict",
        numatune_nodeset=CpuSet.parse("0"),
        cpu_mode="host-passthrough",
        intent=Intent(profiles=(Profile.LATENCY,)),
    )
    assert owned_mismatches(plan, back) == ()
    dropped = GuestSpec(name="g", source="libvirt:g", cpu_mode="host-passthrough")
    lost = owned_mismatches(plan, dropped)
    assert [m.split(" (")[0] for m in lost] == [
        "cputune/vcpupin",
        "cputune/emulatorpin",
        "numatune/memory",
        "metadata/vmtune:tuning",
    ]
    assert owned_mismatches(Plan(), dropped) == ()  # the empty plan checks nothing


def fake_task(proc: Path, tid: int, comm: str, policy: int, prio: int, *, cpus: str = "0") -> None:
    """A task of its own (a kernel thread such as ``kvm-pit/<pid>``): /proc/<tid>/{comm,status,stat}."""
    (proc / str(tid)).mkdir(parents=True, exist_ok=True)
    (proc / str(tid) / "comm").write_text(comm + "\n")
    (proc / str(tid) / "status").write_text(f"Name:\t{comm}\nCpus_allowed_list:\t{cpus}\n")
    (proc / str(tid) / "stat").write_text(STAT.format(tid=tid, comm=comm, policy=policy, prio=prio) + "\n")


FIFO, OTHER = 1, 0
RT_XML = {
    "iothreads": 1,
    "emulatorsched": EmulatorSched(scheduler="fifo", priority=1),
    "iothreadsched": (IOThreadSched(iothreads=CpuSet([1]), scheduler="fifo", priority=1),),
}


@pytest.mark.parametrize(
    ("main", "io", "pit", "xml", "drifted", "rows"),
    [
        # realtime guest as planned, the PIT thread raised as KubeVirt does
        (
            (FIFO, 1),
            (FIFO, 1),
            (FIFO, 2),
            RT_XML,
            set(),
            {"emulator": "sched fifo:1", "iothread 1": "sched fifo:1", "pit": "sched fifo:2"},
        ),
        # libvirt left the emulator and the iothread at SCHED_OTHER; nobody raised the PIT thread
        (
            (OTHER, 0),
            (OTHER, 0),
            (OTHER, 0),
            RT_XML,
            {"emulator", "iothread", "pit"},
            {"emulator": "sched other", "iothread 1": "sched other", "pit": "sched other"},
        ),
        # FIFO priority 1 is not the PIT's 2
        (
            (FIFO, 1),
            (FIFO, 1),
            (FIFO, 1),
            RT_XML,
            {"pit"},
            {"emulator": "sched fifo:1", "iothread 1": "sched fifo:1", "pit": "sched fifo:1"},
        ),
        # a guest without realtime: the PIT is shown, not judged; SCHED_OTHER threads are not listed
        ((OTHER, 0), (OTHER, 0), (OTHER, 0), {"vcpusched": ()}, set(), {"pit": "sched other"}),
        # someone made the emulator FIFO behind libvirt's back
        ((FIFO, 5), (OTHER, 0), None, {"vcpusched": ()}, {"emulator"}, {"emulator": "sched fifo:5"}),
        # KVM made no PIT thread (TCG): nothing to judge there
        (
            (FIFO, 1),
            (FIFO, 1),
            None,
            RT_XML,
            set(),
            {"emulator": "sched fifo:1", "iothread 1": "sched fifo:1"},
        ),
    ],
    ids=["as-planned", "nothing-applied", "pit-priority", "not-realtime", "emulator-raised", "no-pit"],
)
def test_thread_schedulers_against_the_domain(  # noqa: PLR0917 - one parameter per table column
    tmp_path: Path,
    main: tuple[int, int],
    io: tuple[int, int],
    pit: tuple[int, int] | None,
    xml: dict[str, object],
    drifted: set[str],
    rows: dict[str, str],
) -> None:
    pid = 300
    vcpu1 = (OTHER, 0) if xml.get("vcpusched") == () else (FIFO, 1)
    proc = fake_qemu(
        tmp_path,
        pid,
        [
            (pid, "qemu-system-x86", "0", *main),
            (301, "CPU 0/KVM", "1", 0, 0),
            (302, "CPU 1/KVM", "2", *vcpu1),
            (303, "IO iothread1", "3", *io),
        ],
    )
    fake_task(proc, 17, "kthreadd", OTHER, 0)
    fake_task(proc, 310, "kvm-pit/299", FIFO, 2)  # another guest's PIT thread
    if pit is not None:
        fake_task(proc, 311, f"kvm-pit/{pid}", *pit, cpus="1")  # on vCPU 0's CPU, where the hook pins it
    obs = read_process("g", pid, proc=proc)
    assert (obs.pit is not None) == (pit is not None)
    rep = compare(expectation_from_guest(guest(**xml)), obs)
    assert {d.what.split()[0] for d in rep.drifts} == drifted
    assert rep.ok == (not drifted)
    sched = {r.what: r.observed for r in rep.rows if r.observed.startswith("sched")}
    assert sched == rows
    pit_rows = [r for r in rep.rows if r.what == "pit"]
    assert [r.thread for r in pit_rows] == ([f"kvm-pit/{pid} (311)"] if pit else [])


@pytest.mark.parametrize(("cpus", "drifts"), [("1", []), ("0-2", ["pit affinity"])])
def test_a_raised_pit_thread_runs_on_vcpu0s_cpus(tmp_path: Path, cpus: str, drifts: list[str]) -> None:
    """The hook pins the PIT thread it raises to vCPU 0's CPUs (``pit_cpus``); verify holds it to that."""
    pid = 300
    threads = [
        (pid, "qemu-system-x86", "0", FIFO, 1),
        (301, "CPU 0/KVM", "1", 0, 0),
        (302, "CPU 1/KVM", "2", FIFO, 1),
        (303, "IO iothread1", "3", FIFO, 1),
    ]
    proc = fake_qemu(tmp_path, pid, threads)
    fake_task(proc, 311, f"kvm-pit/{pid}", FIFO, 2, cpus=cpus)
    rep = compare(expectation_from_guest(guest(**RT_XML)), read_process("g", pid, proc=proc))
    assert [d.what for d in rep.drifts] == drifts
    [row] = [r for r in rep.rows if r.what == "pit affinity"]
    assert (row.expected, row.observed) == ("CPUs 1", f"CPUs {CpuSet.parse(cpus)}")
