"""Nested-virtualisation CPU gate: keep a host CPU guest startable where KVM refuses MSR 0x10a.

On some nested KVM hosts a guest with ``<cpu mode='host-passthrough'>`` or ``host-model`` dies at start with
``qemu-system-x86_64: error: failed to set MSR 0x10a to 0x...`` and QEMU's ``kvm_buf_set_msrs`` assertion:
the L1 KVM advertises IA32_ARCH_CAPABILITIES (MSR 0x10a), QEMU copies the host's value into the vCPU and
the L1 KVM refuses the write. Other nested hosts, and bare metal, take it. ``<feature policy='disable'
name='arch-capabilities'/>`` makes QEMU leave the MSR alone, at a price: the guest no longer sees the CPU's
not-affected bits (RDCL_NO, MDS_NO...) and may enable mitigations it does not need. So the feature is
written only on evidence that this host refuses the MSR:

* ``HostCaps.arch_capabilities_msr`` False (the cached QEMU probe, ``adapters/probes.py``): disable it;
  True: leave the CPU alone;
* no probe answer: leave the CPU alone, and on a nested host (``HostCaps.nested``) say so in a note, since
  the hypervisor flag alone does not tell which kind of nested host this is; unless domcapabilities'
  host-model CPU lacks the feature (``HostCaps.arch_capabilities`` False), which makes a refusal unlikely.
  That list is weaker evidence than the probe (host-passthrough copies KVM's CPUID whether or not this
  libvirt models the feature), so it only quiets the note and never overrides a probe answer.

A guest without a CPU model (QEMU's default ``qemu64``) never asks for the MSR. Pure: no IO.
"""

from __future__ import annotations

from vmtune.core.guest import GuestSpec
from vmtune.core.plan import Level, Note
from vmtune.core.topology.caps import HostCaps

__all__ = ["ARCH_CAPABILITIES", "nested_cpu_features"]

ARCH_CAPABILITIES = "arch-capabilities"
_HOST_CPU_MODES = ("host-passthrough", "maximum", "host-model")
_XPATH = f"/domain/cpu/feature[@name='{ARCH_CAPABILITIES}']"
_DISABLE = (("disable", ARCH_CAPABILITIES),)


def nested_cpu_features(
    *, guest: GuestSpec, caps: HostCaps | None, mode: str | None, notes: list[Note]
) -> tuple[tuple[str, str], ...]:
    """``(('disable', 'arch-capabilities'),)`` for a KVM guest with a host CPU mode if KVM refuses MSR 0x10a.

    ``mode`` is the CPU mode the guest will have after the plan.
    """
    if caps is None or guest.domain_type != "kvm" or mode not in _HOST_CPU_MODES:
        return ()
    current = next((policy for policy, name in guest.cpu_features if name == ARCH_CAPABILITIES), None)
    if caps.arch_capabilities_msr is None:
        if caps.nested is True and caps.arch_capabilities is not False and current != "disable":
            notes.append(_unknown_note(mode))
        return ()
    if caps.arch_capabilities_msr:
        return ()
    if current == "disable":
        return _DISABLE
    why = (
        f"{mode} CPU with arch-capabilities disabled: on this host KVM refuses the IA32_ARCH_CAPABILITIES "
        f'value QEMU copies into the vCPU (the cached probe saw "failed to set MSR 0x10a"), and the guest '
        "would die at start; it then does not see the CPU's not-affected bits (RDCL_NO, MDS_NO...) and may "
        "enable mitigations it does not need"
    )
    if current is not None:
        why += f" (the guest asked for policy '{current}')"
    notes.append(Note(topic="cpu", level=Level.WARNING if current else Level.INFO, message=why, xpath=_XPATH))
    return _DISABLE


def _unknown_note(mode: str) -> Note:
    return Note(
        topic="cpu",
        level=Level.WARNING,
        message=(
            f"nested KVM (the host CPU has the hypervisor flag) and no probe of MSR 0x10a on this host: "
            f"{mode} CPU left with arch-capabilities as it is, since many nested hosts take it; where KVM "
            "refuses it the "
            'guest dies at start with "failed to set MSR 0x10a": `vmtune apply --connect qemu:///system` or '
            "`vmtune hook install --connect qemu:///system` probes once and caches the answer, or add "
            f"<feature policy='disable' name='{ARCH_CAPABILITIES}'/> yourself"
        ),
        xpath=_XPATH,
    )
