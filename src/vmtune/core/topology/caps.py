"""What the host's QEMU/KVM and kernel can provide (domcapabilities + host probes), as plain data.

Every field is Optional: None means "unknown" (no domcapabilities given, not running on the host), and
gates treat unknown as "allowed, with a note" rather than silently dropping features.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmtune.core.topology.resctrl import Resctrl

__all__ = ["HostCaps"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostCaps:
    source: str = ""
    hyperv: frozenset[str] | None = None
    """Enlightenments domcapabilities lists under ``<features><hyperv>`` (None: unknown)."""
    cpu_modes: frozenset[str] | None = None
    """Supported ``<cpu mode>`` values (host-passthrough, host-model, custom)."""
    cpu_vendor: str | None = None
    """``Intel`` / ``AMD`` as domcapabilities' host-model says."""
    domain_type: str | None = None
    """``kvm`` or ``qemu`` (TCG)."""
    iothreads: bool | None = None
    max_vcpus: int | None = None
    """domcapabilities ``<vcpu max=>``: the most vCPUs QEMU accepts for its machine type."""
    apicv: bool | None = None
    """KVM's APICv (kvm_intel enable_apicv) or AVIC (kvm_amd avic) is on."""
    cgroup_version: int | None = None
    rt_runtime_us: int | None = None
    """``cpu.rt_runtime_us`` available to the machine slice under cgroup v1 (0 makes SCHED_FIFO fail)."""
    rt_runtime_path: str | None = None
    """Where ``rt_runtime_us`` was read (the file the fix writes to)."""
    pci_numa: tuple[tuple[str, int], ...] = ()
    """(PCI address, NUMA node) for host PCI devices guests pass through."""
    nested: bool | None = None
    """The host is itself a guest (its CPU shows the ``hypervisor`` CPUID bit): nested KVM."""
    emulator: str | None = None
    """The QEMU binary libvirt runs for this host's guests (domcapabilities ``<path>``)."""
    arch_capabilities: bool | None = None
    """domcapabilities' host-model CPU carries ``arch-capabilities`` (IA32_ARCH_CAPABILITIES, MSR 0x10a)."""
    arch_capabilities_msr: bool | None = None
    """KVM takes the MSR 0x10a value QEMU copies into a ``-cpu host`` vCPU (the cached probe's answer)."""
    resctrl: Resctrl | None = None
    """Cache allocation (``/sys/fs/resctrl``); None when it is not mounted or the source can't tell."""

    def pci_node(self, address: str) -> int | None:
        for addr, node in self.pci_numa:
            if addr == address:
                return node
        return None
