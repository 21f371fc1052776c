"""Write the `vmtune check` fixtures: per rule a bad/ and a fixed/ set of domain XMLs, and two host trees.

Run from the repo root after changing a case:  .venv/bin/python tests/data/check/make_fixtures.py
The output is committed and read in review like any golden; cases.toml (hand-written) says which host,
domcapabilities and flags each side of a case uses.

Host (a sysfs tree written with tests/sysfsgen.py, plus the probe files vmtune reads):
  hosts/2n4c2t   2 sockets = 2 NUMA nodes x 4 cores x 2 threads, siblings k and k+8, one L3 per node,
                 16 GiB and 512 free 2M hugepages per node (14 GiB for guests after the pool and the
                 default 1 GiB reserve: VT206), APICv on, cgroup v2. tests/test_cli_check.py derives
                 "2n4c2t-oldkvm" from it at run time (APICv off, cgroup v1 machine slice without RT
                 runtime: OLD_KVM_PROBES below).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from sysfsgen import HostSpec, write_sysfs  # noqa: E402  (tests/ is not a package)

WIN10 = "http://microsoft.com/win/10"
FULL_HV = (
    "relaxed",
    "vapic",
    "spinlocks",
    "vpindex",
    "runtime",
    "synic",
    "stimer",
    "frequencies",
    "tlbflush",
    "ipi",
)
GOOD_WIN_CLOCK = (
    "<timer name='rtc' tickpolicy='catchup'/><timer name='pit' tickpolicy='delay'/>"
    "<timer name='hpet' present='no'/><timer name='hypervclock' present='yes'/>"
)
NFV_MEM = "<hugepages/><locked/>"
T2 = "sockets='1' cores='1' threads='2'"
T22 = "sockets='2' cores='1' threads='2'"


def dom(
    name: str,
    *,
    vcpus: int | None = None,
    pins: tuple[str, ...] = (),
    emulatorpin: str | None = None,
    fifo: str | None = None,
    memory_mib: int = 1024,
    numatune: str | None = None,
    memnodes: tuple[str, ...] = (),
    backing: str = "",
    topology: str | None = None,
    cells: tuple[tuple[str, int], ...] = (),
    hyperv: tuple[str, ...] | None = None,
    pmu: bool | None = None,
    clock: str = "",
    balloon: str | None = None,
    os_id: str | None = None,
    intent: str | None = None,
    cachetune: str | None = None,
) -> str:
    """A small but complete domain; every argument is one owned element the rules look at."""
    n = vcpus if vcpus is not None else len(pins)
    meta = []
    if os_id:
        meta.append(
            "    <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>"
            f"<libosinfo:os id='{os_id}'/></libosinfo:libosinfo>"
        )
    if intent:
        meta.append(f"    <vmtune:tuning xmlns:vmtune='https://vmtune.dev/xmlns/1' {intent}/>")
    lines = ["<domain type='kvm'>", f"  <name>{name}</name>"]
    if meta:
        lines += ["  <metadata>", *meta, "  </metadata>"]
    lines.append(f"  <memory unit='MiB'>{memory_mib}</memory>")
    if backing:
        lines.append(f"  <memoryBacking>{backing}</memoryBacking>")
    lines.append(f"  <vcpu placement='static'>{n}</vcpu>")
    tune = [f"<vcpupin vcpu='{i}' cpuset='{c}'/>" for i, c in enumerate(pins)]
    tune += [f"<emulatorpin cpuset='{emulatorpin}'/>"] if emulatorpin else []
    tune += [f"<vcpusched vcpus='{fifo}' scheduler='fifo' priority='1'/>"] if fifo else []
    tune += [f"<cachetune vcpus='0-{n - 1}'>{cachetune}</cachetune>"] if cachetune else []
    if tune:
        lines += ["  <cputune>", *(f"    {t}" for t in tune), "  </cputune>"]
    if numatune or memnodes:
        lines.append("  <numatune>")
        lines += [f"    <memory mode='strict' nodeset='{numatune}'/>"] if numatune else []
        lines += [
            f"    <memnode cellid='{i}' mode='strict' nodeset='{ns}'/>" for i, ns in enumerate(memnodes)
        ]
        lines.append("  </numatune>")
    lines.append("  <os><type arch='x86_64' machine='q35'>hvm</type></os>")
    feats = "<acpi/><apic/>"
    if hyperv is not None:
        feats += (
            "<hyperv mode='custom'>"
            + "".join(
                f"<{h} state='on' retries='8191'/>" if h == "spinlocks" else f"<{h} state='on'/>"
                for h in hyperv
            )
            + "</hyperv>"
        )
    if pmu is not None:
        feats += f"<pmu state='{'on' if pmu else 'off'}'/>"
    lines.append(f"  <features>{feats}</features>")
    cpu = []
    if topology:
        cpu.append(f"<topology {topology}/>")
    if cells:
        cpu.append(
            "<numa>"
            + "".join(
                f"<cell id='{i}' cpus='{c}' memory='{m}' unit='MiB'/>" for i, (c, m) in enumerate(cells)
            )
            + "</numa>"
        )
    lines.append(f"  <cpu mode='host-passthrough'>{''.join(cpu)}</cpu>")
    lines.append(f"  <clock offset='{'localtime' if os_id else 'utc'}'>{clock}</clock>")
    devices = [f"<memballoon model='{balloon}'/>"] if balloon else []
    lines += ["  <devices>", *(f"    {d}" for d in devices), "  </devices>", "</domain>", ""]
    return "\n".join(lines)


def l3_ways(mib: int) -> str:
    """An exclusive share of the host's L3 cache 0 (16 MiB, CPUs 0-3,8-11)."""
    return f"<cache id='0' level='3' type='both' size='{mib}' unit='MiB'/>"


def nfv(name: str, **changes: object) -> str:
    """A well-tuned realtime guest: vCPU 0 housekeeping on CPU 1, FIFO vCPUs 1-2 on cores 2 and 3."""
    kw: dict[str, object] = {
        "pins": ("1", "2", "3"), "emulatorpin": "9", "fifo": "1-2", "pmu": False, "balloon": "none",
        "backing": NFV_MEM, "numatune": "0", "memory_mib": 512,
    }  # fmt: skip
    kw.update(changes)
    return dom(name, **kw)  # type: ignore[arg-type]


def win(name: str, **changes: object) -> str:
    kw: dict[str, object] = {
        "pins": ("1", "9"), "topology": T2, "numatune": "0", "os_id": WIN10, "hyperv": FULL_HV,
        "clock": GOOD_WIN_CLOCK,
    }  # fmt: skip
    kw.update(changes)
    return dom(name, **kw)  # type: ignore[arg-type]


WIDE = ("1", "9", "5", "13")  # two whole cores, one per node: topology T22
CELLS = (("0-1", 512), ("2-3", 512))

# code -> (bad guests, fixed guests): {file stem: xml}
CASES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "VT101": (
        {"db": dom("db", vcpus=2, intent="profile='balanced'")},
        {"db": dom("db", pins=("1", "9"), topology=T2, numatune="0", intent="profile='balanced'")},
    ),
    "VT102": (
        {"web": dom("web", pins=("0-7", "0-7"))},
        {"web": dom("web", pins=("1-3", "1-3"), numatune="0")},
    ),
    "VT103": (
        {"a": dom("a", pins=("1", "2"), numatune="0"), "b": dom("b", pins=("9", "10"), numatune="0")},
        {
            "a": dom("a", pins=("1", "9"), topology=T2, numatune="0"),
            "b": dom("b", pins=("2", "10"), topology=T2, numatune="0"),
        },
    ),
    "VT104": (
        {
            "a": dom("a", pins=("1", "9"), topology=T2, numatune="0"),
            "b": dom("b", pins=("9", "2"), numatune="0"),
        },
        {
            "a": dom("a", pins=("1", "9"), topology=T2, numatune="0"),
            "b": dom("b", pins=("5", "13"), topology=T2, numatune="1"),
        },
    ),
    # on 2n4c2t-ccx (cases.toml): L3 groups 0-1,8-9 | 2-3,10-11 | 4-5,12-13 | 6-7,14-15
    "VT105": (
        {
            "a": dom("a", pins=("1", "9"), topology=T2, numatune="0"),
            "b": dom("b", pins=("0",), numatune="0"),
        },
        {
            "a": dom("a", pins=("1", "9"), topology=T2, numatune="0"),
            "b": dom("b", pins=("2",), numatune="0"),
        },
    ),
    "VT106": (
        {
            "lat": dom(
                "lat", pins=("1", "9"), topology=T2, emulatorpin="1", numatune="0", intent="profile='latency'"
            )
        },
        {
            "lat": dom(
                "lat", pins=("1", "9"), topology=T2, emulatorpin="0", numatune="0", intent="profile='latency'"
            )
        },
    ),
    "VT107": (
        {"web": dom("web", pins=("0", "8"), topology=T2, numatune="0")},
        {"web": dom("web", pins=("1", "9"), topology=T2, numatune="0")},
    ),
    "VT108": (
        {"old": dom("old", pins=("1", "64"), numatune="0")},
        {"old": dom("old", pins=("1", "9"), topology=T2, numatune="0")},
    ),
    "VT109": (
        {"smt": dom("smt", pins=("1", "2"), numatune="0", topology=T2)},
        {"smt": dom("smt", pins=("1", "9"), numatune="0", topology=T2)},
    ),
    "VT110": (
        {
            "a": dom("a", pins=("1", "9"), topology=T2, numatune="0", cachetune=l3_ways(10)),
            "b": dom("b", pins=("2", "10"), topology=T2, numatune="0", cachetune=l3_ways(10)),
        },
        {
            "a": dom("a", pins=("1", "9"), topology=T2, numatune="0", cachetune=l3_ways(6)),
            "b": dom("b", pins=("2", "10"), topology=T2, numatune="0", cachetune=l3_ways(6)),
        },
    ),
    "VT201": (
        {"db": dom("db", pins=("1", "9"), topology=T2, numatune="1")},
        {"db": dom("db", pins=("1", "9"), topology=T2, numatune="0")},
    ),
    "VT202": (
        {"db": dom("db", pins=("1", "9"), topology=T2, backing="<hugepages/>", memory_mib=512)},
        {"db": dom("db", pins=("1", "9"), topology=T2, backing="<hugepages/>", memory_mib=512, numatune="0")},
    ),
    "VT203": (
        {"wide": dom("wide", pins=WIDE, topology=T22)},
        {"wide": dom("wide", pins=WIDE, topology=T22, cells=CELLS, memnodes=("0", "1"))},
    ),
    "VT204": (
        {"wide": dom("wide", pins=WIDE, topology=T22, cells=CELLS)},
        {"wide": dom("wide", pins=WIDE, topology=T22, cells=CELLS, memnodes=("0", "1"))},
    ),
    "VT205": (
        {
            "big": dom(
                "big", pins=("1", "9"), topology=T2, backing="<hugepages/>", numatune="0", memory_mib=2048
            )
        },
        {
            "big": dom(
                "big", pins=("1", "9"), topology=T2, backing="<hugepages/>", numatune="0", memory_mib=512
            )
        },
    ),
    "VT206": (
        {
            "a": dom("a", pins=("1", "9"), topology=T2, numatune="0", memory_mib=10240),
            "b": dom("b", pins=("2", "10"), topology=T2, numatune="0", memory_mib=8192),
        },
        {
            "a": dom("a", pins=("1", "9"), topology=T2, numatune="0", memory_mib=10240),
            "b": dom("b", pins=("5", "13"), topology=T2, numatune="1", memory_mib=8192),
        },
    ),
    "VT301": ({"win": win("win", hyperv=None)}, {"win": win("win")}),
    "VT302": ({"win": win("win", clock="<timer name='rtc' tickpolicy='catchup'/>")}, {"win": win("win")}),
    "VT303": ({"win": win("win")}, {"win": win("win")}),
    "VT304": ({"win": win("win")}, {"win": win("win", hyperv=("spinlocks",))}),
    "VT401": ({"nfv": nfv("nfv", pins=("1", "2-3", "2-3"))}, {"nfv": nfv("nfv")}),
    "VT402": ({"nfv": nfv("nfv", pmu=None)}, {"nfv": nfv("nfv")}),
    "VT403": ({"nfv": nfv("nfv", balloon="virtio")}, {"nfv": nfv("nfv")}),
    "VT404": ({"nfv": nfv("nfv", backing="<hugepages/>")}, {"nfv": nfv("nfv")}),
    "VT405": ({"nfv": nfv("nfv", fifo="0-2")}, {"nfv": nfv("nfv")}),
    "VT406": ({"nfv": nfv("nfv")}, {"nfv": nfv("nfv")}),
    "VT407": ({"nfv": nfv("nfv", emulatorpin="10")}, {"nfv": nfv("nfv")}),
}


OLD_KVM_PROBES = {
    "sys/module/kvm_intel/parameters/enable_apicv": "N",
    "sys/fs/cgroup/cpu,cpuacct/machine.slice/cpu.rt_runtime_us": "0",
}


def _host(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    spec = HostSpec(
        name=root.name, sockets=2, cores_per_node=4, threads_per_core=2, sibling_numbering="interleaved",
        l3_cores=4, hugepages={2048: (512, 512)}, vendor="Intel",
    )  # fmt: skip
    write_sysfs(spec, root)
    probes = {
        "sys/module/kvm_intel/parameters/enable_apicv": "Y",
        "sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids",
    }
    for path, text in probes.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text + "\n")


def main() -> None:
    _host(HERE / "hosts" / "2n4c2t")
    for code, sides in CASES.items():
        for side, guests in zip(("bad", "fixed"), sides, strict=True):
            out = HERE / code / side
            if out.exists():
                shutil.rmtree(out)
            out.mkdir(parents=True)
            for stem, xml in guests.items():
                (out / f"{stem}.xml").write_text(xml)


if __name__ == "__main__":
    main()
