"""Read the GuestSpec a plan needs from a domain XML tree (XPath views; the tree stays the truth)."""

from __future__ import annotations

from lxml import etree

from vmtune.core.guest import (
    GuestSpec,
    GuestTopology,
    HypervFeature,
    IOThreadPin,
    Memballoon,
    MemNode,
    MemoryBacking,
    NumaCell,
    Timer,
    VcpuPin,
    VcpuSched,
)
from vmtune.core.intent.model import OsFamily
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError, VmtuneError
from vmtune.xmlmap import tree
from vmtune.xmlmap.metadata import LIBOSINFO_NS, os_family_of, read_intent
from vmtune.xmlmap.safe import parse_xml

__all__ = ["memory_kib", "read_guest"]

Element = etree._Element

# libvirt's virScaleInteger suffixes: bare/k/KiB are 1024-based, KB/MB/... are 1000-based.
_UNITS: dict[str, int] = {"b": 1, "bytes": 1}
for _i, _p in enumerate("kmgtpe", start=1):
    _UNITS[_p] = _UNITS[f"{_p}ib"] = 1024**_i
    _UNITS[f"{_p}b"] = 1000**_i


def memory_kib(value: str, unit: str | None, where: str) -> int:
    """A libvirt scaled integer (``<memory unit='GiB'>4</memory>``) in KiB, rounded up like libvirt."""
    factor = _UNITS.get((unit or "KiB").strip().lower())
    if factor is None:
        raise InputError(f"{where}: unknown memory unit {unit!r}")
    try:
        number = int(value.strip())
    except ValueError:
        raise InputError(f"{where}: not an integer: {value.strip()[:40]!r}") from None
    if number < 0:
        raise InputError(f"{where}: negative memory size")
    return -(-number * factor // 1024)


class _Reader:
    def __init__(self, root: Element, source: str) -> None:
        self.root = root
        self.source = source

    def where(self, elem: Element, attr: str | None = None) -> str:
        path = elem.getroottree().getpath(elem)
        return f"{self.source}: {path}" + (f"/@{attr}" if attr else "")

    def int_attr(self, elem: Element, name: str, default: int | None = None) -> int | None:
        raw = elem.get(name)
        if raw is None:
            return default
        try:
            return int(str(raw).strip(), 0) if str(raw).strip().startswith("0x") else int(str(raw).strip())
        except ValueError:
            raise InputError(f"{self.where(elem, name)}: not an integer: {str(raw)[:40]!r}") from None

    def req_int(self, elem: Element, name: str) -> int:
        value = self.int_attr(elem, name)
        if value is None:
            raise InputError(f"{self.where(elem, name)}: missing")
        return value

    def cpuset(self, elem: Element, name: str) -> CpuSet | None:
        raw = elem.get(name)
        if raw is None:
            return None
        return CpuSet.parse(str(raw), what=self.where(elem, name))

    def text_int(self, elem: Element) -> int:
        try:
            return int((elem.text or "").strip())
        except ValueError:
            raise InputError(f"{self.where(elem)}: not an integer: {(elem.text or '')[:40]!r}") from None

    def onoff(self, elem: Element | None, name: str = "state") -> bool | None:
        if elem is None:
            return None
        value = elem.get(name)
        return None if value is None else str(value) in ("on", "yes")

    # -- sections -----------------------------------------------------------------------------------
    def vcpupins(self, cputune: Element | None, vcpus: int) -> tuple[VcpuPin, ...]:
        pins: dict[int, VcpuPin] = {}
        for pin in tree.children(cputune, "vcpupin") if cputune is not None else ():
            vcpu = self.req_int(pin, "vcpu")
            if vcpu in pins:
                raise InputError(f"{self.where(pin)}: duplicate vcpupin for vCPU {vcpu}")
            if not 0 <= vcpu < vcpus:
                raise InputError(f"{self.where(pin, 'vcpu')}: vCPU {vcpu} beyond the {vcpus} vCPUs")
            cpus = self.cpuset(pin, "cpuset")
            if cpus is None:
                raise InputError(f"{self.where(pin, 'cpuset')}: missing")
            pins[vcpu] = VcpuPin(vcpu=vcpu, cpus=cpus)
        return tuple(pins[v] for v in sorted(pins))

    def iothreadpins(self, cputune: Element | None) -> tuple[IOThreadPin, ...]:
        out = []
        for pin in tree.children(cputune, "iothreadpin") if cputune is not None else ():
            cpus = self.cpuset(pin, "cpuset")
            out.append(IOThreadPin(iothread=self.req_int(pin, "iothread"), cpus=cpus or CpuSet()))
        return tuple(out)

    def vcpusched(self, cputune: Element | None) -> tuple[VcpuSched, ...]:
        out = []
        for sched in tree.children(cputune, "vcpusched") if cputune is not None else ():
            out.append(
                VcpuSched(
                    vcpus=self.cpuset(sched, "vcpus") or CpuSet(),
                    scheduler=str(sched.get("scheduler") or ""),
                    priority=self.int_attr(sched, "priority"),
                )
            )
        return tuple(out)

    def numa_cells(self, cpu: Element | None) -> tuple[NumaCell, ...]:
        numa = tree.child(cpu, "numa") if cpu is not None else None
        out = []
        for i, cell in enumerate(tree.children(numa, "cell") if numa is not None else ()):
            mem = cell.get("memory")
            out.append(
                NumaCell(
                    id=self.int_attr(cell, "id", i) or 0,
                    cpus=self.cpuset(cell, "cpus") or CpuSet(),
                    memory_kib=0 if mem is None else memory_kib(str(mem), cell.get("unit"), self.where(cell)),
                )
            )
        return tuple(out)

    def topology(self, cpu: Element | None) -> GuestTopology | None:
        topo = tree.child(cpu, "topology") if cpu is not None else None
        if topo is None:
            return None
        return GuestTopology(
            **{k: self.int_attr(topo, k, 1) or 1 for k in ("sockets", "dies", "clusters", "cores", "threads")}
        )

    def hyperv(self, features: Element | None) -> tuple[str | None, tuple[HypervFeature, ...]]:
        hv = tree.child(features, "hyperv") if features is not None else None
        if hv is None:
            return None, ()
        feats = []
        for item in hv:
            if not tree.is_element(item):
                continue
            attrs = tuple((str(k), str(v)) for k, v in item.attrib.items() if k != "state")
            subs = tuple(str(s.tag) for s in item if tree.is_element(s) and s.get("state", "on") == "on")
            feats.append(
                HypervFeature(
                    name=str(item.tag), state=item.get("state", "on") == "on", attrs=attrs, children=subs
                )
            )
        return str(hv.get("mode") or "custom"), tuple(feats)

    def memory_backing(self) -> MemoryBacking | None:
        mb = tree.child(self.root, "memoryBacking")
        if mb is None:
            return None
        huge = tree.child(mb, "hugepages")
        page = tree.child(huge, "page") if huge is not None else None
        size = page.get("size") if page is not None else None
        return MemoryBacking(
            hugepages=huge is not None,
            page_size_kib=None
            if page is None or size is None
            else memory_kib(str(size), page.get("unit"), self.where(page, "size")),
            page_nodeset=None if page is None else self.cpuset(page, "nodeset"),
            locked=tree.child(mb, "locked") is not None,
            nosharepages=tree.child(mb, "nosharepages") is not None,
        )

    def memballoon(self, devices: Element | None) -> Memballoon | None:
        mbal = tree.child(devices, "memballoon") if devices is not None else None
        if mbal is None:
            return None
        return Memballoon(
            model=str(mbal.get("model") or "virtio"),
            autodeflate=self.onoff(mbal, "autodeflate"),
            freepage_reporting=self.onoff(mbal, "freePageReporting"),
        )

    def hostdev_pci(self, devices: Element | None) -> tuple[str, ...]:
        out = []
        for hd in tree.children(devices, "hostdev") if devices is not None else ():
            addr = hd.find("source/address")
            if hd.get("type") != "pci" or addr is None:
                continue
            try:
                dom, bus, slot, fn = (
                    int(str(addr.get(k, "0")), 0) for k in ("domain", "bus", "slot", "function")
                )
            except ValueError:
                raise InputError(f"{self.where(addr)}: malformed PCI address") from None
            out.append(f"{dom:04x}:{bus:02x}:{slot:02x}.{fn:x}")
        return tuple(out)


def read_guest(tree_or_bytes: etree._ElementTree | bytes | str, *, source: str) -> GuestSpec:
    """Everything vmtune needs to know about the guest; InputError names the XPath of bad values."""
    doc = (
        tree_or_bytes
        if isinstance(tree_or_bytes, etree._ElementTree)
        else parse_xml(tree_or_bytes, source=source, root="domain")
    )
    root = doc.getroot()
    if root.tag != "domain":
        raise InputError(f"{source}: root element is <{root.tag}>, expected <domain>")
    try:
        return _read(_Reader(root, source))
    except VmtuneError:
        raise
    except ValueError as err:  # CpuSet range errors surface as InputError already; this is a backstop
        raise InputError(f"{source}: {err}") from None


def _read(r: _Reader) -> GuestSpec:
    root = r.root
    vcpu = tree.child(root, "vcpu")
    vcpus = r.text_int(vcpu) if vcpu is not None else 1
    cputune = tree.child(root, "cputune")
    numatune = tree.child(root, "numatune")
    nt_mem = tree.child(numatune, "memory") if numatune is not None else None
    cpu = tree.child(root, "cpu")
    model = tree.child(cpu, "model") if cpu is not None else None
    features = tree.child(root, "features")
    devices = tree.child(root, "devices")
    os_el = tree.child(root, "os")
    os_type = os_el.find("type") if os_el is not None else None
    memory = tree.child(root, "memory")
    iothreads = tree.child(root, "iothreads")
    emulatorpin = tree.child(cputune, "emulatorpin") if cputune is not None else None
    hyperv_mode, hyperv = r.hyperv(features)
    kvm = tree.child(features, "kvm") if features is not None else None
    clock = tree.child(root, "clock")
    os_node = root.find(f"metadata/{{{LIBOSINFO_NS}}}libosinfo/{{{LIBOSINFO_NS}}}os")
    os_id = None if os_node is None else os_node.get("id")
    name = tree.child(root, "name")
    uuid = tree.child(root, "uuid")
    return GuestSpec(
        name=(name.text or "").strip() if name is not None else "",
        source=r.source,
        uuid=(uuid.text or "").strip() if uuid is not None else None,
        domain_type=str(root.get("type") or "kvm"),
        arch=None if os_type is None or os_type.get("arch") is None else str(os_type.get("arch")),
        machine=None if os_type is None or os_type.get("machine") is None else str(os_type.get("machine")),
        vcpus=vcpus,
        current_vcpus=None if vcpu is None else r.int_attr(vcpu, "current"),
        vcpu_placement=None if vcpu is None else tree.attr(vcpu, "placement"),
        vcpu_cpuset=None if vcpu is None else r.cpuset(vcpu, "cpuset"),
        memory_kib=0
        if memory is None
        else memory_kib(memory.text or "", memory.get("unit"), r.where(memory)),
        iothreads=0 if iothreads is None else r.text_int(iothreads),
        vcpupins=r.vcpupins(cputune, vcpus),
        emulatorpin=None if emulatorpin is None else r.cpuset(emulatorpin, "cpuset"),
        iothreadpins=r.iothreadpins(cputune),
        vcpusched=r.vcpusched(cputune),
        numatune_mode=None if nt_mem is None else str(nt_mem.get("mode") or "strict"),
        numatune_nodeset=None if nt_mem is None else r.cpuset(nt_mem, "nodeset"),
        numatune_placement=None if nt_mem is None else tree.attr(nt_mem, "placement"),
        memnodes=tuple(
            MemNode(
                cellid=r.req_int(m, "cellid"),
                mode=str(m.get("mode") or "strict"),
                nodeset=r.cpuset(m, "nodeset") or CpuSet(),
            )
            for m in (tree.children(numatune, "memnode") if numatune is not None else ())
        ),
        cpu_mode=None if cpu is None else str(cpu.get("mode") or "custom"),
        cpu_model=None if model is None else (model.text or "").strip() or None,
        topology=r.topology(cpu),
        numa_cells=r.numa_cells(cpu),
        cpu_features=tuple(
            (str(f.get("policy") or "require"), str(f.get("name") or ""))
            for f in (tree.children(cpu, "feature") if cpu is not None else ())
        ),
        hyperv_mode=hyperv_mode,
        hyperv=hyperv,
        pmu=r.onoff(tree.child(features, "pmu") if features is not None else None),
        kvm_hidden=r.onoff(tree.child(kvm, "hidden") if kvm is not None else None),
        kvm_hint_dedicated=r.onoff(tree.child(kvm, "hint-dedicated") if kvm is not None else None),
        apic=features is not None and tree.child(features, "apic") is not None,
        timers=tuple(
            Timer(
                name=str(t.get("name") or ""),
                present=None if t.get("present") is None else t.get("present") == "yes",
                tickpolicy=tree.attr(t, "tickpolicy"),
            )
            for t in (tree.children(clock, "timer") if clock is not None else ())
        ),
        memory_backing=r.memory_backing(),
        memballoon=r.memballoon(devices),
        os_family=OsFamily.UNKNOWN if os_id is None else os_family_of(str(os_id)),
        os_id=None if os_id is None else str(os_id),
        hostdev_pci=r.hostdev_pci(devices),
        intent=read_intent(root, r.source),
    )
