"""Golden outputs of device_tuning per profile, for Windows/Linux/NFV guests, on named hosts and on a
domcapabilities capture that lacks most enlightenments (nested KVM) and one that lists all of them.

Regenerate with ``pytest tests/test_tuning_golden.py --regen`` and read every changed line.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from testutil import DATA as TEST_DATA
from testutil import GOLDEN, check_golden
from tuning_hosts import GUESTS, HOSTS
from vmtune.core.guest import GuestSpec, VcpuPin
from vmtune.core.intent.model import Intent, Profile
from vmtune.core.intent.profiles import resolve
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.tuning.devices import DeviceTuning, device_tuning
from vmtune.cpuset import CpuSet
from vmtune.errors import VmtuneError
from vmtune.xmlmap.domcaps import parse_domcapabilities

DATA = TEST_DATA / "domcapabilities"
OUT = GOLDEN / "profiles"

# Probed host state as on this machine (cgroup v1, no RT budget for the machine slice), and a fixed one.
CGROUP_V1_RT0 = HostCaps(
    source="probes", cgroup_version=1, rt_runtime_us=0, apicv=False,
    rt_runtime_path="/sys/fs/cgroup/cpu/machine/cpu.rt_runtime_us",
)  # fmt: skip
CGROUP_V2 = HostCaps(source="probes", cgroup_version=2, apicv=True)


def _caps(name: str) -> HostCaps:
    dom = parse_domcapabilities((DATA / f"{name}.xml").read_bytes(), f"{name}.xml")
    probes = CGROUP_V1_RT0 if name == "this-machine-kvm" else CGROUP_V2
    return replace(dom, apicv=probes.apicv, cgroup_version=probes.cgroup_version,
                   rt_runtime_us=probes.rt_runtime_us, rt_runtime_path=probes.rt_runtime_path)  # fmt: skip


# full-hyperv.xml comes from this AMD machine; on the Intel host its host-model vendor is Intel.
CAPS = {
    "nested": _caps("this-machine-kvm"),
    "full": _caps("full-hyperv"),
    "full-intel": replace(_caps("full-hyperv"), cpu_vendor="Intel"),
}
CASES = [
    (guest, host, caps, profile)
    for guest in ("win11", "linux", "nfv")
    for host, caps in (("epyc-2n", "nested"), ("epyc-2n", "full"), ("xeon-1n", "full-intel"))
    for profile in ("balanced", "latency", "realtime", "windows")
]


def placement(host: Host, guest: GuestSpec) -> tuple[tuple[VcpuPin, ...], CpuSet]:
    """What the planner would hand over: emulator on node 0's first core, each vCPU on its own thread of
    the next cores (both siblings for SMT guests, one per core otherwise)."""
    threads = guest.topology.threads if guest.topology else 1
    cores = [c for c in host.cores if c.node == 0]
    cpus: list[int] = []
    for core in cores[1:]:
        cpus.extend(list(core.cpus)[:threads])
    pins = tuple(VcpuPin(vcpu=v, cpus=CpuSet([cpus[v]])) for v in range(guest.vcpus))
    return pins, cores[0].cpus


def render(dt: DeviceTuning) -> str:
    lines = [
        f"cpu_mode: {dt.cpu_mode}",
        f"cpu_features: {', '.join(f'{p}:{n}' for p, n in dt.cpu_features) or '-'}",
    ]
    if dt.features is None:
        lines.append("features: None")
    else:
        f = dt.features
        lines.append(f"features: pmu={f.pmu} kvm_hint_dedicated={f.kvm_hint_dedicated}")
        if f.hyperv is None:
            lines.append("  hyperv: None")
        for h in f.hyperv or ():
            extra = " ".join([*(f"{k}={v}" for k, v in h.attrs), *(f"<{c}/>" for c in h.children)])
            lines.append(f"  hyperv {h.name} state={'on' if h.state else 'off'} {extra}".rstrip())
    if dt.timers is None:
        lines.append("timers: None")
    for t in dt.timers or ():
        lines.append(f"timer {t.name} present={t.present} tickpolicy={t.tickpolicy}")
    mb = dt.memory_backing
    lines.append(
        "memoryBacking: None"
        if mb is None
        else f"memoryBacking: hugepages={mb.hugepages} page_kib={mb.page_size_kib} locked={mb.locked} "
        f"nosharepages={mb.nosharepages}"
    )
    lines.append(f"memballoon: {dt.memballoon}")
    lines.append(
        "vcpusched: None"
        if dt.vcpusched is None
        else "vcpusched: " + "; ".join(f"{s.vcpus} {s.scheduler} {s.priority}" for s in dt.vcpusched)
    )
    lines.extend(f"note [{n.level}] {n.topic}: {n.message}" for n in dt.notes)
    lines.extend(f"advice: {a}" for a in dt.advice)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("guest", "host", "caps", "profile"), CASES, ids=["--".join(c) for c in CASES])
def test_golden(guest: str, host: str, caps: str, profile: str, regen: bool) -> None:
    g, h = GUESTS[guest], HOSTS[host]
    pins, emulator = placement(h, g)
    try:
        resolved = resolve(Intent(profiles=(Profile(profile),)), g)
        dt = device_tuning(
            host=h,
            guest=g,
            resolved=resolved,
            caps=CAPS[caps],
            vcpu_cpus=CpuSet().union(*(p.cpus for p in pins)),
            emulator_cpus=emulator,
            nodes=CpuSet([0]),
            vcpupins=pins,
        )
        text = render(dt)
    except VmtuneError as err:
        text = f"{type(err).__name__}: {err}\n"
    check_golden(OUT / f"{guest}--{host}--{caps}--{profile}.txt", text, regen)
