"""What the guest sees, compared: libvirt refuses a migration or restore whose XML changes it.

libvirt's ``qemuDomainDefCheckABIStability`` compares the incoming definition with the source's; this is
the part vmtune could touch (vCPUs, NUMA cells, topology, CPU model and features, memory and memory
devices, IOThreads, Hyper-V and other features, timers, the balloon). An empty answer means the hook's
output is a pure re-binding.
"""

from __future__ import annotations

from vmtune.core.guest import GuestSpec

__all__ = ["abi_changes"]


def abi_changes(before: GuestSpec, after: GuestSpec) -> tuple[str, ...]:
    """One line per guest-visible difference between two readings of a guest (empty: same ABI)."""
    checks: tuple[tuple[str, object, object], ...] = (
        ("vCPUs", before.vcpus, after.vcpus),
        ("current vCPUs", before.current_vcpus, after.current_vcpus),
        ("memory", before.memory_kib, after.memory_kib),
        ("maxMemory", before.max_memory_kib, after.max_memory_kib),
        ("memory devices", before.memory_devices, after.memory_devices),
        ("NUMA cells", _cells(before), _cells(after)),
        ("topology", before.topology, after.topology),
        ("CPU mode", before.cpu_mode, after.cpu_mode),
        ("CPU model", before.cpu_model, after.cpu_model),
        ("CPU features", sorted(before.cpu_features), sorted(after.cpu_features)),
        ("IOThreads", before.iothreads, after.iothreads),
        ("Hyper-V", (before.hyperv_mode, before.hyperv), (after.hyperv_mode, after.hyperv)),
        ("features", _features(before), _features(after)),
        ("timers", sorted(before.timers, key=str), sorted(after.timers, key=str)),
        ("memballoon", before.memballoon, after.memballoon),
    )
    return tuple(f"{what}: {old!r} -> {new!r}" for what, old, new in checks if old != new)


def _cells(
    guest: GuestSpec,
) -> list[tuple[int, str, int, str | None, bool | None, tuple[tuple[int, int], ...]]]:
    return [
        (c.id, str(c.cpus), c.memory_kib, c.mem_access, c.discard, c.distances)
        for c in sorted(guest.numa_cells, key=lambda c: c.id)
    ]


def _features(guest: GuestSpec) -> tuple[bool | None, bool | None, bool | None, bool]:
    return (guest.pmu, guest.kvm_hidden, guest.kvm_hint_dedicated, guest.apic)
