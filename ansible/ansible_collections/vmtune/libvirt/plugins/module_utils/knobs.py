"""The tuning knobs of vmtune (option, CLI flag, type, choices, help), one row per knob.

Written by ansible/gen_knobs.py from vmtune.core.intent.model.KNOBS; do not edit by hand
(tests/ansible/test_knobs.py fails when this table and the model differ)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

KNOBS = (
    {'option': 'profile', 'flag': '--profile', 'type': 'list', 'choices': ['balanced', 'latency', 'realtime', 'windows'], 'elements': 'str', 'help': 'balanced|latency|realtime|windows, comma-combinable.'},
    {'option': 'cpu_policy', 'flag': '--cpu-policy', 'type': 'str', 'choices': ['dedicated', 'shared', 'mixed'], 'help': 'dedicated: a host CPU per vCPU; shared: vCPUs time-share a pool; mixed: both.'},
    {'option': 'dedicated_mask', 'flag': '--dedicated-mask', 'type': 'str', 'help': 'vCPUs on dedicated cores under --cpu-policy mixed, cpuset syntax (0-1, ^0).'},
    {'option': 'thread_policy', 'flag': '--thread-policy', 'type': 'str', 'choices': ['prefer', 'isolate', 'require'], 'help': 'SMT siblings: prefer, isolate or require.'},
    {'option': 'emulator', 'flag': '--emulator', 'type': 'str', 'choices': ['share', 'isolate'], 'help': 'Emulator thread: share or isolate.'},
    {'option': 'iothreads', 'flag': '--iothreads', 'type': 'int', 'help': 'Number of IOThreads.'},
    {'option': 'numa', 'flag': '--numa', 'type': 'str', 'help': 'auto, off, or a number of host nodes.'},
    {'option': 'numa_fit', 'flag': '--numa-fit', 'type': 'str', 'choices': ['pack', 'spread'], 'help': 'pack: the fullest node that holds the guest; spread: the emptiest.'},
    {'option': 'cache_fit', 'flag': '--cache-fit', 'type': 'str', 'choices': ['pack', 'spread', 'own'], 'help': 'pack: the fullest cache group that holds the guest (shared with other guests); own: never a group another guest uses while an idle one holds it; spread: a core per cache group in turn.'},
    {'option': 'memory_mode', 'flag': '--memory-mode', 'type': 'str', 'choices': ['strict', 'preferred', 'interleave', 'restrictive'], 'help': 'numatune mode for the guest memory.'},
    {'option': 'hugepages', 'flag': '--hugepages', 'type': 'str', 'choices': ['2M', '1G', 'none'], 'help': '2M, 1G or none.'},
    {'option': 'realtime_mask', 'flag': '--realtime-mask', 'type': 'str', 'help': 'vCPUs that get SCHED_FIFO, cpuset syntax (^0).'},
    {'option': 'hyperv', 'flag': '--hyperv', 'type': 'str', 'choices': ['auto', 'on', 'off'], 'help': 'Hyper-V enlightenments: auto/on/off.'},
    {'option': 'reserve', 'flag': '--reserve', 'type': 'str', 'help': 'Host CPUs never given to guests.'},
    {'option': 'memory_reserve', 'flag': '--memory-reserve', 'type': 'str', 'help': 'Memory per NUMA node kept from guests (default: 1/20 of the node, at least 1G).'},
    {'option': 'os', 'flag': '--os', 'type': 'str', 'choices': ['windows', 'linux', 'other', 'unknown'], 'help': 'Guest OS when libosinfo metadata is missing.'},
    {'option': 'core_kind', 'flag': '--core-kind', 'type': 'str', 'choices': ['big', 'little', 'any'], 'help': 'Hybrid CPUs: big, little or any.'},
    {'option': 'cache_share', 'flag': '--cache-share', 'type': 'str', 'help': 'Exclusive L3 cache for the vCPUs (resctrl): a share, a number of ways, or none.'},
    {'option': 'force', 'flag': '--force', 'type': 'bool', 'help': 'Ignore host gates (domcapabilities, cgroup RT).'},
    {'option': 'reshape', 'flag': '--reshape', 'type': 'bool', 'help': 'Give a guest that has NUMA cells or a topology a new shape (changes what the guest sees).'},
    {'option': 'isolate_host', 'flag': '--isolate-host', 'type': 'bool', 'no_flag': '--no-isolate-host', 'help': 'While the guest runs, keep host tasks, IRQs and workqueues off its CPUs (hook).'},
    {'option': 'power_idle', 'flag': '--power-idle', 'type': 'str', 'help': 'Dedicated cores: performance governor while the guest runs, this once it stops (hook).'},
)
