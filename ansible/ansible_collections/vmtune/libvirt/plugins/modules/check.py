#!/usr/bin/python
"""vmtune.libvirt.check: vmtune's audit findings for the hypervisor's guests, as data."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: check
short_description: Audit a hypervisor's guests with vmtune check
description:
  - Runs C(vmtune check --connect URI --json) and returns its findings and summary.
  - Fails when a finding at or above O(fail_on) remains (error by default, as C(vmtune check) exits 5).
  - Reads only; check mode runs it as well.
options:
  uri:
    description: libvirt connection URI.
    type: str
    default: qemu:///system
  all:
    description: Also check defined guests that are not running (vmtune check --all).
    type: bool
    default: true
  fail_on:
    description: The lowest finding severity that fails the task; C(never) only reports.
    type: str
    choices: [error, warning, info, never]
    default: error
  select:
    description: Only these rule codes or prefixes (VT101, VT2).
    type: list
    elements: str
  ignore:
    description: Skip these rule codes or prefixes.
    type: list
    elements: str
  executable:
    description: Path of the vmtune executable (default, the one on PATH).
    type: path
"""

EXAMPLES = r"""
- vmtune.libvirt.check:
    fail_on: warning
"""

RETURN = r"""
findings:
  description: One dict per finding (code, severity, guest, message, ...), as vmtune check --json prints them.
  returned: always
  type: list
  elements: dict
summary:
  description: Counts per severity and code.
  returned: always
  type: dict
failing:
  description: The findings at or above O(fail_on).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmtune.libvirt.plugins.module_utils.vmtune import COMMON_ARGS, vmtune_json

RANK = dict(info=0, warning=1, error=2)
FINDINGS_EXIT = 5
"""vmtune check's exit code when an error-level finding remains: data here, the threshold decides."""


def main():
    spec = dict(
        all=dict(type="bool", default=True),
        fail_on=dict(type="str", choices=["error", "warning", "info", "never"], default="error"),
        select=dict(type="list", elements="str"),
        ignore=dict(type="list", elements="str"),
    )
    spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    args = ["check", "--connect", p["uri"], "--json"] + (["--all"] if p["all"] else [])
    for option in ("select", "ignore"):
        if p[option]:
            args += ["--" + option, ",".join(p[option])]
    doc, _err = vmtune_json(module, args, ok_codes=(0, FINDINGS_EXIT))
    findings = doc.get("findings") or []
    bar = RANK.get(p["fail_on"], len(RANK))
    failing = [f for f in findings if RANK.get(str(f.get("severity")), -1) >= bar]
    result = dict(changed=False, findings=findings, summary=doc.get("summary") or {}, failing=failing)
    if failing:
        codes = ", ".join(sorted({"%s (%s)" % (f.get("code"), f.get("guest", "?")) for f in failing}))
        module.fail_json(msg="vmtune check: %d finding(s) at or above %s: %s" % (len(failing), p["fail_on"], codes),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
