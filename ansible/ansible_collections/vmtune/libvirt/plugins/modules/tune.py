#!/usr/bin/python
"""vmtune.libvirt.tune: plan and define a libvirt guest's pinning, NUMA and features with vmtune."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tune
short_description: Tune a libvirt/KVM guest with vmtune (CPU pinning, NUMA, hugepages, features)
description:
  - Runs the hypervisor's installed C(vmtune apply --connect URI --domain NAME --json), which plans the guest
    next to the other guests of the host and defines the result through libvirt.
  - Check mode runs C(vmtune plan --domain NAME --json) instead; nothing is defined and C(changed) is the
    prediction. With C(--diff) the task shows the inactive domain XML before and after (only the elements
    vmtune owns differ) and the reasons for each decision.
  - A second run with the same options defines nothing and reports C(changed=false).
  - Every vmtune run holds the libvirt hook's lock (C(/run/vmtune/hook.lock)), so it never interleaves with a
    guest start that the vmtune hook is placing.
  - Knob options left unset keep what the guest's stored vmtune intent says (or vmtune's defaults).
options:
  name:
    description: The libvirt domain to tune.
    type: str
    required: true
    aliases: [guest]
  uri:
    description: libvirt connection URI (the modules run on the hypervisor itself).
    type: str
    default: qemu:///system
  live:
    description: Also re-pin the running guest now (vmtune --live); see RV(live_applied).
    type: bool
    default: false
  executable:
    description: Path of the vmtune executable (default, the one on PATH).
    type: path
  lock_timeout:
    description: Seconds to wait for the hook's lock before failing.
    type: float
    default: 120
  # BEGIN knobs: written by ansible/gen_knobs.py from vmtune.core.intent.model.KNOBS
  profile:
    description: 'balanced|latency|realtime|windows, comma-combinable. (vmtune --profile)'
    type: list
    elements: str
    choices: ['balanced', 'latency', 'realtime', 'windows']
  cpu_policy:
    description: 'dedicated: a host CPU per vCPU; shared: vCPUs time-share a pool; mixed: both. (vmtune --cpu-policy)'
    type: str
    choices: ['dedicated', 'shared', 'mixed']
  dedicated_mask:
    description: 'vCPUs on dedicated cores under --cpu-policy mixed, cpuset syntax (0-1, ^0). (vmtune --dedicated-mask)'
    type: str
  thread_policy:
    description: 'SMT siblings: prefer, isolate or require. (vmtune --thread-policy)'
    type: str
    choices: ['prefer', 'isolate', 'require']
  emulator:
    description: 'Emulator thread: share or isolate. (vmtune --emulator)'
    type: str
    choices: ['share', 'isolate']
  iothreads:
    description: 'Number of IOThreads. (vmtune --iothreads)'
    type: int
  numa:
    description: 'auto, off, or a number of host nodes. (vmtune --numa)'
    type: str
  numa_fit:
    description: 'pack: the fullest node that holds the guest; spread: the emptiest. (vmtune --numa-fit)'
    type: str
    choices: ['pack', 'spread']
  cache_fit:
    description: 'pack: the fullest cache group that holds the guest (shared with other guests); own: never a group another guest uses while an idle one holds it; spread: a core per cache group in turn. (vmtune --cache-fit)'
    type: str
    choices: ['pack', 'spread', 'own']
  memory_mode:
    description: 'numatune mode for the guest memory. (vmtune --memory-mode)'
    type: str
    choices: ['strict', 'preferred', 'interleave', 'restrictive']
  hugepages:
    description: '2M, 1G or none. (vmtune --hugepages)'
    type: str
    choices: ['2M', '1G', 'none']
  realtime_mask:
    description: 'vCPUs that get SCHED_FIFO, cpuset syntax (^0). (vmtune --realtime-mask)'
    type: str
  hyperv:
    description: 'Hyper-V enlightenments: auto/on/off. (vmtune --hyperv)'
    type: str
    choices: ['auto', 'on', 'off']
  reserve:
    description: 'Host CPUs never given to guests. (vmtune --reserve)'
    type: str
  memory_reserve:
    description: 'Memory per NUMA node kept from guests (default: 1/20 of the node, at least 1G). (vmtune --memory-reserve)'
    type: str
  os:
    description: 'Guest OS when libosinfo metadata is missing. (vmtune --os)'
    type: str
    choices: ['windows', 'linux', 'other', 'unknown']
  core_kind:
    description: 'Hybrid CPUs: big, little or any. (vmtune --core-kind)'
    type: str
    choices: ['big', 'little', 'any']
  cache_share:
    description: 'Exclusive L3 cache for the vCPUs (resctrl): a share, a number of ways, or none. (vmtune --cache-share)'
    type: str
  force:
    description: 'Ignore host gates (domcapabilities, cgroup RT). (vmtune --force)'
    type: bool
  reshape:
    description: 'Give a guest that has NUMA cells or a topology a new shape (changes what the guest sees). (vmtune --reshape)'
    type: bool
  isolate_host:
    description: 'While the guest runs, keep host tasks, IRQs and workqueues off its CPUs (hook). (vmtune --isolate-host)'
    type: bool
  power_idle:
    description: 'Dedicated cores: performance governor while the guest runs, this once it stops (hook). (vmtune --power-idle)'
    type: str
  # END knobs
"""

EXAMPLES = r"""
- name: Pin a latency-sensitive guest
  vmtune.libvirt.tune:
    name: db1
    profile: [latency]
    hugepages: 1G
  register: tuned

- name: Restart it when the new pins wait for a restart
  ansible.builtin.debug:
    msg: "{{ tuned.restart_reasons }}"
  when: tuned.needs_restart
"""

RETURN = r"""
plan:
  description: vmtune's plan (the JSON of C(vmtune plan --json)).
  returned: always
  type: dict
needs_restart:
  description: The running guest differs from its new definition and gets it at its next start.
  returned: always
  type: bool
restart_reasons:
  description: The owned sections that wait for that restart.
  returned: always
  type: list
  elements: str
live_applied:
  description: What C(live=true) changed on the running guest now.
  returned: always
  type: list
  elements: str
notes:
  description: vmtune's reasons for each decision (level, topic, message).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmtune.libvirt.plugins.module_utils.vmtune import (
    COMMON_ARGS,
    hook_lock,
    knob_args,
    knob_argument_spec,
    vmtune_json,
)


def _notes(plan):
    return ["%s: %s: %s" % (n.get("level"), n.get("topic"), n.get("message")) for n in plan.get("notes") or []]


def _diff(name, doc, notes):
    xml = dict(
        before=doc.get("before", ""),
        after=doc.get("after", ""),
        before_header="%s (inactive XML, before)" % name,
        after_header="%s (inactive XML, after)" % name,
    )
    return [xml, dict(prepared="vmtune: reasons\n" + "".join("  %s\n" % n for n in notes))]


def main():
    spec = dict(
        name=dict(type="str", required=True, aliases=["guest"]),
        live=dict(type="bool", default=False),
        lock_timeout=dict(type="float", default=120.0),
    )
    spec.update(COMMON_ARGS)
    spec.update(knob_argument_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    target = ["--connect", p["uri"], "--domain", p["name"], "--json"] + knob_args(p)
    if module.check_mode:
        args = ["plan"] + target
    else:
        args = ["apply"] + target + (["--live"] if p["live"] else [])
    with hook_lock(module, timeout=p["lock_timeout"]):
        doc, _err = vmtune_json(module, args)
    plan = doc.get("plan") or {}
    notes = _notes(plan)
    result = dict(
        changed=bool(doc.get("changed")),
        plan=plan,
        needs_restart=bool(doc.get("needs_restart")),
        restart_reasons=doc.get("needs_restart") or [],
        live_applied=doc.get("live_applied") or [],
        running=bool(doc.get("running")),
        notes=notes,
    )
    if module._diff:
        result["diff"] = _diff(p["name"], doc, notes)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
