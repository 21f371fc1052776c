#!/usr/bin/python
"""vmtune.libvirt.facts: the hypervisor's topology and who owns which CPU, as Ansible facts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: facts
short_description: Host topology and CPU ownership from vmtune, as facts
description:
  - Runs C(vmtune host --connect URI --json) on the hypervisor and returns its topology (sockets, NUMA nodes,
    caches, cores, memory and hugepages) and the CPU ledger (which guest holds which host CPU) as
    C(ansible_facts.vmtune_host) and C(ansible_facts.vmtune_cpu_owners).
  - Reads only; check mode runs it as well.
options:
  uri:
    description: libvirt connection URI; its defined guests are the CPU owners.
    type: str
    default: qemu:///system
  executable:
    description: Path of the vmtune executable (default, the one on PATH).
    type: path
"""

EXAMPLES = r"""
- vmtune.libvirt.facts:
- ansible.builtin.debug:
    msg: "{{ ansible_facts.vmtune_host.summary.numa_nodes }} NUMA node(s)"
"""

RETURN = r"""
ansible_facts:
  description: C(vmtune_host) (vmtune host --json) and C(vmtune_cpu_owners) (its C(owners) part).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmtune.libvirt.plugins.module_utils.vmtune import COMMON_ARGS, vmtune_json


def main():
    module = AnsibleModule(argument_spec=dict(COMMON_ARGS), supports_check_mode=True)
    host, _err = vmtune_json(module, ["host", "--connect", module.params["uri"], "--json"])
    facts = dict(vmtune_host=host, vmtune_cpu_owners=host.get("owners"))
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
