"""Nested-virtualisation CPU gate: keep a host-passthrough/host-model guest startable on a nested KVM host.

Seen on the dev machine (nested KVM on AMD EPYC, libvirt 9.0, QEMU 7.2; scripts/LIBVIRT-NOTES.md): a guest
with ``<cpu mode='host-passthrough'>`` or ``host-model`` dies at start with
``qemu-system-x86_64: error: failed to set MSR 0x10a to 0x...`` followed by QEMU's ``kvm_buf_set_msrs``
assertion. MSR 0x10a is IA32_ARCH_CAPABILITIES: the L1 KVM advertises the ``arch-capabilities`` CPUID bit
(host-model lists it as required), QEMU copies the host's value into the guest, and the L1 KVM then refuses
the write. ``<feature policy='disable' name='arch-capabilities'/>`` makes QEMU leave the MSR alone and the
guest starts. A guest without a CPU model (QEMU's default ``qemu64``) never asks for it.

The host counts as nested when its own CPUID has the hypervisor bit (``/proc/cpuinfo`` flags, or the
``virsh capabilities`` host CPU); see ``HostCaps.nested``. Pure: no IO.
"""

from __future__ import annotations

from vmtune.core.guest import GuestSpec
from vmtune.core.plan import Level, Note
from vmtune.core.topology.caps import HostCaps

__all__ = ["ARCH_CAPABILITIES", "nested_cpu_features"]

ARCH_CAPABILITIES = "arch-capabilities"
_HOST_CPU_MODES = ("host-passthrough", "maximum", "host-model")


def nested_cpu_features(
    *, guest: GuestSpec, caps: HostCaps | None, mode: str | None, notes: list[Note]
) -> tuple[tuple[str, str], ...]:
    """``(('disable', 'arch-capabilities'),)`` for a KVM guest with a host CPU mode on a nested host.

    ``mode`` is the CPU mode the guest will have after the plan. Unknown nesting (no probes, no
    capabilities) leaves the CPU alone: on bare metal the feature works and tells the guest which CPU
    vulnerabilities it need not mitigate.
    """
    if caps is None or caps.nested is not True or guest.domain_type != "kvm" or mode not in _HOST_CPU_MODES:
        return ()
    xpath = f"/domain/cpu/feature[@name='{ARCH_CAPABILITIES}']"
    current = next((policy for policy, name in guest.cpu_features if name == ARCH_CAPABILITIES), None)
    if current == "disable":
        return (("disable", ARCH_CAPABILITIES),)
    why = (
        f"nested KVM (the host CPU has the hypervisor flag): {mode} CPU "
        f'with arch-capabilities disabled, else QEMU dies at start with "failed to set MSR 0x10a" '
        "(IA32_ARCH_CAPABILITIES, which the L1 KVM advertises but refuses to set); the guest then does not "
        "see the CPU's not-affected bits (RDCL_NO, MDS_NO...) and may enable mitigations it does not need"
    )
    if current is not None:
        why += f" (the guest asked for policy '{current}')"
    notes.append(Note(topic="cpu", level=Level.WARNING if current else Level.INFO, message=why, xpath=xpath))
    return (("disable", ARCH_CAPABILITIES),)
