"""device_tuning: one test per gate and per dependency rule, on the named hosts of tuning_hosts.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testutil import DATA as TEST_DATA
from tuning_hosts import GUESTS, HOSTS
from vmtune.core.guest import GuestSpec, GuestTopology, HypervFeature, Memballoon, Timer, VcpuPin, VcpuSched
from vmtune.core.intent.model import HypervMode, parse_intent
from vmtune.core.intent.profiles import resolve
from vmtune.core.plan import Level, Note
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.tuning.devices import DeviceTuning, device_tuning
from vmtune.core.tuning.hyperv import (
    DEPENDS,
    EVERYWHERE,
    HYPERVCLOCK,
    ORDER,
    hypervclock_available,
    plan_enlightenments,
)
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.xmlmap.domcaps import parse_domcapabilities

DATA = TEST_DATA / "domcapabilities"
NESTED = parse_domcapabilities((DATA / "this-machine-kvm.xml").read_bytes(), "this-machine-kvm.xml")
FULL = parse_domcapabilities((DATA / "full-hyperv.xml").read_bytes(), "full-hyperv.xml")
# full-hyperv.xml is this (AMD) machine's capture with every enlightenment listed; as the domcapabilities
# vendor wins over the topology's, the Intel cases use the same list with an Intel host-model.
FULL_INTEL = replace(FULL, cpu_vendor="Intel")
RT_PATH = "/sys/fs/cgroup/cpu/machine/cpu.rt_runtime_us"
PROFILE_SET = ("relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset",
               "frequencies", "reenlightenment", "tlbflush", "ipi")  # fmt: skip


def tune(
    profile: str = "balanced",
    *,
    host: str | Host = "epyc-2n",
    guest: str | GuestSpec = "linux",
    caps: HostCaps | None = None,
    vcpus: str = "1-2,17-18",
    emulator: str | None = "0,16",
    nodes: str = "0",
    pins: tuple[VcpuPin, ...] = (),
    **intent: object,
) -> DeviceTuning:
    g = GUESTS[guest] if isinstance(guest, str) else guest
    h = HOSTS[host] if isinstance(host, str) else host
    texts = {name: "yes" if value is True else str(value) for name, value in intent.items()}
    resolved = resolve(parse_intent({"profiles": profile, **texts}, where=lambda k: k.flag), g)
    return device_tuning(
        host=h,
        guest=g,
        resolved=resolved,
        caps=caps,
        vcpu_cpus=CpuSet.parse(vcpus),
        emulator_cpus=CpuSet.parse(emulator) if emulator is not None else None,
        nodes=CpuSet.parse(nodes),
        vcpupins=pins,
    )


def names(dt: DeviceTuning) -> list[str]:
    assert dt.features is not None and dt.features.hyperv is not None
    return [f.name for f in dt.features.hyperv]


def warnings(dt: DeviceTuning, topic: str | None = None) -> list[Note]:
    return [n for n in dt.notes if n.level is Level.WARNING and (topic is None or n.topic == topic)]


# -- Windows: enlightenments ----------------------------------------------------------------------------
def test_windows_full_set_on_capable_intel_host() -> None:
    dt = tune("windows", host="xeon-1n", guest="win11", caps=FULL_INTEL)
    assert names(dt) == [*PROFILE_SET, "evmcs"]
    assert dt.features is not None and dt.features.hyperv is not None
    by = {f.name: f for f in dt.features.hyperv}
    assert by["spinlocks"].attrs == (("retries", "8191"),)
    assert by["stimer"].children == ("direct",)
    assert "vendor_id" not in by  # only when asked for
    assert dt.timers == (
        Timer(name="hypervclock", present=True),
        Timer(name="rtc", tickpolicy="catchup"),
        Timer(name="pit", tickpolicy="delay"),
        Timer(name="hpet", present=False),
    )
    assert not warnings(dt, "hyperv")


def test_evmcs_only_on_intel() -> None:
    dt = tune("windows", host="epyc-2n", guest="win11", caps=FULL)
    assert names(dt) == list(PROFILE_SET)
    assert any("evmcs left out: Intel only (AMD host)" in n.message for n in dt.notes)


def test_nested_kvm_writes_only_the_listed_subset_with_a_note_per_drop() -> None:
    dt = tune("windows", host="epyc-2n", guest="win11", caps=NESTED)
    assert names(dt) == ["spinlocks"]
    dropped = [n for n in warnings(dt, "hyperv") if "does not offer it" in n.message]
    assert sorted(n.message.split(":")[0] for n in dropped) == sorted(
        f"dropped {x}" for x in PROFILE_SET if x != "spinlocks"
    )
    assert all(n.xpath and n.xpath.startswith("/domain/features/hyperv/") for n in dropped)
    # nested KVM rejects the hv-time MSRs too: no hypervclock, the other Windows timers stay
    assert dt.timers is not None
    assert [t.name for t in dt.timers] == ["rtc", "pit", "hpet"]
    assert any("hypervclock left out" in n.message for n in warnings(dt, "clock"))


def test_vendor_id_kept_when_the_guest_asks_for_it() -> None:
    guest = replace(
        GUESTS["win11"], hyperv=(HypervFeature(name="vendor_id", attrs=(("value", "KVMKVMKVM"),)),)
    )
    dt = tune("windows", guest=guest, caps=NESTED)
    assert dt.features is not None and dt.features.hyperv is not None
    assert dt.features.hyperv == (
        HypervFeature(name="spinlocks", attrs=(("retries", "8191"),)),
        HypervFeature(name="vendor_id", attrs=(("value", "KVMKVMKVM"),)),
    )


def test_guest_extra_feature_the_host_lacks_is_dropped() -> None:
    guest = replace(GUESTS["win11"], hyperv=(HypervFeature(name="avic"),))
    caps = replace(FULL, hyperv=FULL.hyperv - {"avic"} if FULL.hyperv else None)
    dt = tune("windows", guest=guest, caps=caps)
    assert "avic" not in names(dt)
    assert any(n.message.startswith("dropped avic") for n in warnings(dt))


@pytest.mark.parametrize(
    ("missing", "dropped_too"),
    [
        ("vpindex", {"synic", "stimer", "tlbflush", "ipi"}),
        ("synic", {"stimer"}),
        ("vapic", {"evmcs"}),
    ],
)
def test_dependents_follow_their_base(missing: str, dropped_too: set[str]) -> None:
    assert FULL.hyperv is not None
    caps = replace(FULL_INTEL, hyperv=FULL.hyperv - {missing})
    dt = tune("windows", host="xeon-1n", guest="win11", caps=caps)
    assert set(names(dt)) == ({*PROFILE_SET, "evmcs"} - {missing}) - dropped_too
    for dep in dropped_too:
        assert any(n.message.startswith(f"dropped {dep}: it needs") for n in warnings(dt)), dep


def test_stimer_needs_the_hyperv_clock() -> None:
    notes: list[Note] = []
    kept = plan_enlightenments(
        GUESTS["win11"], offered=FULL.hyperv, vendor="Intel", clock_ok=False, notes=notes
    )
    assert "stimer" not in [f.name for f in kept]
    assert "synic" in [f.name for f in kept]
    assert any("dropped stimer: it needs hypervclock" in n.message for n in notes)


def test_hypervclock_availability() -> None:
    assert hypervclock_available(None) is None
    assert hypervclock_available(HostCaps()) is None
    assert not hypervclock_available(NESTED)
    assert hypervclock_available(FULL)


def test_unknown_caps_write_only_what_every_kvm_host_provides_with_a_note() -> None:
    bare = replace(GUESTS["win11"], hyperv=(), hyperv_mode=None, timers=())
    for caps in (None, HostCaps(source="probes of /")):
        dt = tune("windows", host="xeon-1n", guest=bare, caps=caps)
        assert names(dt) == ["relaxed", "spinlocks"]
        assert dt.timers is not None and HYPERVCLOCK not in {t.name for t in dt.timers}
        (note,) = [n for n in warnings(dt) if "support unknown" in n.message]
        assert "left out vapic, vpindex, runtime, synic, stimer" in note.message
        assert "hypervclock" in note.message and "--domcapabilities FILE" in note.message


def test_unknown_caps_keep_what_the_guest_already_has() -> None:
    own = (HypervFeature(name="vapic"), HypervFeature(name="vpindex"), HypervFeature(name="synic"))
    guest = replace(GUESTS["win11"], hyperv=own, timers=(Timer(name=HYPERVCLOCK, present=True),))
    dt = tune("windows", host="xeon-1n", guest=guest, caps=None)
    assert names(dt) == ["relaxed", "vapic", "spinlocks", "vpindex", "synic"]
    assert dt.timers is not None and Timer(name=HYPERVCLOCK, present=True) in dt.timers


def test_every_kvm_host_set_is_small_and_needs_no_base() -> None:
    assert {"relaxed", "spinlocks", "vendor_id"} >= EVERYWHERE
    assert all(not DEPENDS.get(name) for name in EVERYWHERE)


def test_hyperv_off_removes_the_element_and_hypervclock() -> None:
    guest = replace(GUESTS["win11"], timers=(Timer(name="hypervclock", present=True),))
    dt = tune("windows", guest=guest, caps=FULL, hyperv=HypervMode.OFF)
    assert dt.features is not None and dt.features.hyperv == ()
    assert dt.timers is not None
    assert Timer(name="hypervclock", present=False) in dt.timers
    assert Timer(name="rtc", tickpolicy="catchup") in dt.timers  # still a Windows guest


def test_windows_auto_by_os_and_linux_untouched() -> None:
    assert names(tune("balanced", guest="win11", caps=FULL))  # libosinfo says Windows
    dt = tune("balanced", guest="linux", caps=FULL)
    assert dt.features is None and dt.timers is None


def test_hyperv_on_for_a_linux_guest_writes_enlightenments_but_no_windows_timers() -> None:
    dt = tune("balanced", guest="linux", caps=FULL, hyperv=HypervMode.ON)
    assert names(dt) == list(PROFILE_SET)
    assert dt.timers == (Timer(name="hypervclock", present=True),)


@given(
    offered=st.frozensets(st.sampled_from(ORDER)),
    vendor=st.sampled_from(["Intel", "AMD", None]),
    clock=st.booleans(),
)
def test_enlightenments_are_offered_and_dependency_closed(
    offered: frozenset[str], vendor: str | None, clock: bool
) -> None:
    notes: list[Note] = []
    kept = [f.name for f in plan_enlightenments(GUESTS["win11"], offered=offered, vendor=vendor,
                                                clock_ok=clock, notes=notes)]  # fmt: skip
    assert set(kept) <= offered
    have = set(kept) | ({HYPERVCLOCK} if clock else set())
    for name in kept:
        assert set(DEPENDS.get(name, ())) <= have, name
    assert kept == sorted(kept, key=ORDER.index)
    wanted = set(PROFILE_SET) | ({"evmcs"} if vendor == "Intel" else set())
    dropped = [n for n in notes if n.message.startswith("dropped ")]
    assert len(dropped) == len(wanted - set(kept))


# -- CPU model and topology -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "cpu_mode", "model", "threads", "expected"),
    [
        ("epyc-2n", "host-model", None, 2, (("require", "topoext"),)),
        ("epyc-2n", "custom", "EPYC-Milan", 2, (("require", "topoext"),)),
        ("epyc-2n", "host-passthrough", None, 2, ()),
        ("epyc-2n", "host-model", None, 1, ()),
        ("epyc-2n", None, None, 2, ()),
        ("xeon-1n", "host-model", None, 2, ()),
    ],
    ids=["amd-host-model", "amd-custom", "amd-passthrough", "amd-no-smt", "amd-no-model", "intel"],
)
def test_topoext_on_amd_smt_guests(
    host: str, cpu_mode: str | None, model: str | None, threads: int, expected: tuple[tuple[str, str], ...]
) -> None:
    guest = replace(
        GUESTS["linux"],
        cpu_mode=cpu_mode,
        cpu_model=model,
        topology=GuestTopology(sockets=1, cores=2, threads=threads),
    )
    dt = tune("balanced", host=host, guest=guest)
    assert dt.cpu_features == expected
    if host == "epyc-2n" and cpu_mode is None and threads == 2:
        assert any("topoext" in n.message for n in warnings(dt, "cpu"))


def test_latency_gets_host_passthrough_unless_the_host_cannot() -> None:
    assert tune("latency").cpu_mode == "host-passthrough"
    tcg = parse_domcapabilities(
        "<domainCapabilities><domain>qemu</domain><cpu><mode name='host-passthrough' supported='no'/>"
        "<mode name='host-model' supported='yes'/></cpu></domainCapabilities>",
        "tcg.xml",
    )
    dt = tune("latency", caps=tcg)
    assert dt.cpu_mode is None
    assert tune("latency", guest=replace(GUESTS["linux"], domain_type="qemu")).cpu_mode is None


# -- realtime ---------------------------------------------------------------------------------------------
def test_realtime_settings() -> None:
    dt = tune("realtime", guest="nfv", vcpus="1-3,17-19", emulator="0,16")
    assert dt.cpu_mode == "host-passthrough"
    assert dt.features is not None
    assert (dt.features.pmu, dt.features.kvm_hint_dedicated, dt.features.hyperv) == (False, True, None)
    assert dt.memballoon == Memballoon(model="none")
    assert dt.vcpusched == (VcpuSched(vcpus=CpuSet.parse("1-5"), scheduler="fifo", priority=1),)
    mb = dt.memory_backing
    assert mb is not None
    assert (mb.hugepages, mb.page_size_kib, mb.locked, mb.nosharepages) == (True, 1048576, True, True)
    assert not warnings(dt)


def test_realtime_mask() -> None:
    dt = tune("realtime", guest="nfv", realtime_mask="2-5")
    assert dt.vcpusched == (VcpuSched(vcpus=CpuSet.parse("2-5"), scheduler="fifo", priority=1),)


def test_realtime_without_passthrough_drops_hint_dedicated() -> None:
    no_pt = HostCaps(cpu_modes=frozenset({"host-model", "custom"}))
    dt = tune("realtime", guest="nfv", caps=no_pt)
    assert dt.features is not None and dt.features.kvm_hint_dedicated is None
    assert any("hint-dedicated left out" in n.message for n in warnings(dt, "rt"))


@pytest.mark.parametrize(
    "caps",
    [HostCaps(cgroup_version=1, rt_runtime_us=950000), HostCaps(cgroup_version=1, rt_runtime_us=None),
     HostCaps(cgroup_version=2)],
    ids=["v1-rt-ok", "v1-no-rt-group-sched", "v2"],
)  # fmt: skip
def test_cgroup_rt_runtime_gate_passes(caps: HostCaps) -> None:
    dt = tune("realtime", guest="nfv", caps=caps)
    assert dt.vcpusched
    assert not [n for n in warnings(dt, "rt") if "VT406" in n.message]


def test_no_rt_runtime_is_infeasible_unless_forced() -> None:
    caps = HostCaps(cgroup_version=1, rt_runtime_us=0, rt_runtime_path=RT_PATH)
    with pytest.raises(InfeasibleError) as err:
        tune("realtime", guest="nfv", caps=caps)
    msg = str(err.value)
    assert "needs RT runtime" in msg and f"({RT_PATH} = 0)" in msg  # needed vs. host
    assert f"echo 950000 > {RT_PATH}" in msg and "--force" in msg  # how to fix
    dt = tune("realtime", guest="nfv", caps=caps, force="yes")
    assert dt.vcpusched  # --force: written, with the warning
    (gate,) = [n for n in warnings(dt, "rt") if "VT406" in n.message]
    assert "Cannot set scheduler parameters" in gate.message


def test_emulator_on_realtime_cores_warns_but_not_on_the_housekeeping_vcpu() -> None:
    pins = tuple(VcpuPin(vcpu=v, cpus=CpuSet([v + 1])) for v in range(6))
    bad = tune("realtime", guest="nfv", vcpus="1-6", emulator="3", pins=pins)
    assert any("VT407" in n.message for n in warnings(bad))
    ok = tune("realtime", guest="nfv", vcpus="1-6", emulator="1", pins=pins)  # vCPU 0's CPU
    assert not any("VT407" in n.message for n in warnings(ok))
    floating = tune("realtime", guest="nfv", emulator=None)
    assert any("VT407" in n.message for n in warnings(floating))


def test_force_every_vcpu_realtime_warns() -> None:
    dt = tune("realtime", guest="nfv", realtime_mask="0-5", force=True)
    assert any("VT405" in n.message for n in warnings(dt))


# -- hugepages --------------------------------------------------------------------------------------------
def test_realtime_without_free_hugepages_is_infeasible() -> None:
    with pytest.raises(InfeasibleError) as err:
        tune("realtime", guest="nfv", nodes="1")
    msg = str(err.value)
    assert "node 1: needs 4 x 1G, 0 free of 0" in msg
    assert "echo 4 > /sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages" in msg


def test_realtime_force_plans_with_a_warning_and_advice() -> None:
    dt = tune("realtime", guest="nfv", nodes="1", force=True)
    assert dt.memory_backing is not None and dt.memory_backing.page_size_kib == 1048576
    assert any("VT205" in n.message for n in warnings(dt, "memory"))
    assert any(
        a.startswith("hugepages: node 1 needs 4 x 1G")
        and "echo 4 > /sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages" in a
        for a in dt.advice
    )


def test_latency_takes_hugepages_only_when_free() -> None:
    free = tune("latency", nodes="0")
    assert free.memory_backing is not None and free.memory_backing.page_size_kib == 1048576
    assert not free.memory_backing.locked
    none_free = tune("latency", nodes="1")
    assert none_free.memory_backing is None
    assert any("not enough free hugepages" in n.message for n in none_free.notes)


def test_2m_pages_when_1g_is_short_or_memory_is_not_a_multiple() -> None:
    dt = tune("latency", host="xeon-1n")
    assert dt.memory_backing is not None and dt.memory_backing.page_size_kib == 2048
    odd = replace(GUESTS["linux"], memory_kib=3 * 1048576 + 2048)
    dt = tune("latency", guest=odd)
    assert dt.memory_backing is not None and dt.memory_backing.page_size_kib == 2048


def test_explicit_hugepages_are_required() -> None:
    with pytest.raises(InfeasibleError, match="--hugepages asks for them"):
        tune("balanced", host="nuc-nohuge", vcpus="1-2", emulator="0", hugepages="2M")
    dt = tune("balanced", hugepages="2M")
    assert dt.memory_backing is not None and dt.memory_backing.page_size_kib == 2048


def test_hugepages_none_removes_them() -> None:
    from vmtune.core.guest import MemoryBacking

    guest = replace(GUESTS["linux"], memory_backing=MemoryBacking(hugepages=True, locked=True))
    dt = tune("balanced", guest=guest, hugepages="none")
    assert dt.memory_backing == MemoryBacking(hugepages=False, locked=True)


def test_no_hugepage_pools_reported_plans_with_a_warning() -> None:
    host = replace(HOSTS["epyc-2n"], nodes=tuple(replace(n, hugepages=()) for n in HOSTS["epyc-2n"].nodes))
    dt = tune("realtime", host=host, guest="nfv")
    assert dt.memory_backing is not None and dt.memory_backing.hugepages
    assert dt.memory_backing.page_size_kib is None
    assert any("can't check" in n.message for n in warnings(dt, "memory"))


# -- balloon ----------------------------------------------------------------------------------------------
def test_latency_keeps_the_balloon_without_autodeflate() -> None:
    dt = tune("latency")
    assert dt.memballoon == Memballoon(model="virtio", autodeflate=False)
    assert tune("balanced").memballoon is None


# -- advice -----------------------------------------------------------------------------------------------
def test_advice_kernel_cmdline_names_whole_cores() -> None:
    dt = tune("latency", vcpus="1-2")  # siblings 17-18 are isolated too
    cmd = "isolcpus=managed_irq,domain,1-2,17-18 nohz_full=1-2,17-18 rcu_nocbs=1-2,17-18"
    assert any(cmd in a for a in dt.advice)
    assert any("IRQBALANCE_BANNED_CPULIST=1-2,17-18" in a for a in dt.advice)
    assert any("tuned-adm profile cpu-partitioning" in a for a in dt.advice)
    rt = tune("realtime", guest="nfv")
    assert any("tuned-adm profile realtime-virtual-host" in a for a in rt.advice)


def test_no_cmdline_advice_when_already_isolated() -> None:
    dt = tune("latency", host="xeon-1n", vcpus="4-5,12-13", emulator="0")
    assert not any("isolcpus=" in a for a in dt.advice)


@pytest.mark.parametrize(("host", "text"), [("epyc-2n", "options kvm_amd avic=1"),
                                            ("xeon-1n", "options kvm_intel enable_apicv=1")])  # fmt: skip
def test_apicv_advice(host: str, text: str) -> None:
    dt = tune("windows", host=host, guest="win11", caps=HostCaps(apicv=False), vcpus="1-2")
    assert any(text in a for a in dt.advice)
    dt = tune("windows", host=host, guest="win11", caps=HostCaps(apicv=True), vcpus="1-2")
    assert not any("APICv" in a or "AVIC" in a for a in dt.advice)


def test_balanced_linux_changes_nothing() -> None:
    dt = tune("balanced", guest="linux", host="xeon-1n")
    assert dt == DeviceTuning()
