"""libvirt's canonical child order for the elements vmtune inserts into (the order ``virsh dumpxml`` prints).

Taken from libvirt's formatters (``src/conf/domain_conf.c``: ``virDomainDefFormatInternalSetRootName``,
``virDomainCputuneDefFormat``, ``virDomainDefFeaturesFormat``, ``virCPUDefFormatBuf`` in ``cpu_conf.c``,
``virDomainMemoryBackingFormat``, the device loop) and cross-checked against the 144 ``*-latest.xml``
outputs of libvirt 10.7.0 in the shared corpus. New elements go after the last sibling that libvirt prints
no later than them, so an already-canonical file stays canonical and a hand-ordered one is never reshuffled.
"""

from __future__ import annotations

__all__ = ["ORDER", "rank"]

_DOMAIN = (
    "name uuid hwuuid genid title description metadata maxMemory memory currentMemory blkiotune memtune "
    "memoryBacking vcpu vcpus iothreads iothreadids defaultiothread cputune numatune resource sysinfo "
    "bootloader bootloader_args os idmap features cpu clock on_poweroff on_reboot on_crash on_lockfailure "
    "pm perf devices seclabel keywrap launchSecurity throttlegroups"
)
_CPUTUNE = (
    "shares period quota global_period global_quota emulator_period emulator_quota iothread_period "
    "iothread_quota vcpupin emulatorpin iothreadpin emulatorsched vcpusched iothreadsched cachetune "
    "memorytune"
)
# virDomainFeature enum order: the features formatter walks the enum.
_FEATURES = (
    "acpi apic pae hap viridian privnet hyperv kvm pvspinlock capabilities pmu vmport gic smm ioapic hpt "
    "vmcoreinfo htm nested-hv msrs ccf-assist xen cfpc sbbc ibs tcg async-teardown ras ps2 aia"
)
# virDomainHyperv enum order.
_HYPERV = (
    "relaxed vapic spinlocks vpindex runtime synic stimer reset vendor_id frequencies reenlightenment "
    "tlbflush ipi evmcs avic emsr_bitmap xmm_input"
)
_CACHETUNE = "cache monitor"
_KVM = "hidden hint-dedicated poll-control pv-ipi dirty-ring"
_CPU = "model vendor topology cache maxphysaddr feature numa"
_MEMORY_BACKING = "hugepages nosharepages locked source access allocation discard"
_NUMATUNE = "memory memnode"
_DEVICES = (
    "emulator disk controller lease filesystem interface smartcard serial parallel console channel input "
    "tpm graphics sound audio video hostdev redirdev redirfilter hub watchdog memballoon rng panic shmem "
    "memory iommu vsock crypto pstore"
)

ORDER: dict[str, dict[str, int]] = {
    parent: {tag: i for i, tag in enumerate(names.split())}
    for parent, names in (
        ("domain", _DOMAIN),
        ("cputune", _CPUTUNE),
        ("cachetune", _CACHETUNE),
        ("features", _FEATURES),
        ("hyperv", _HYPERV),
        ("kvm", _KVM),
        ("cpu", _CPU),
        ("memoryBacking", _MEMORY_BACKING),
        ("numatune", _NUMATUNE),
        ("devices", _DEVICES),
    )
}
"""parent tag -> {child tag: rank}. Parents not listed (``clock``, ``numa``, ``hugepages``) append."""


def rank(parent: str, child: str) -> int | None:
    """The canonical rank of ``child`` inside ``parent``; None for unknown/foreign elements."""
    table = ORDER.get(parent)
    return None if table is None else table.get(child)
