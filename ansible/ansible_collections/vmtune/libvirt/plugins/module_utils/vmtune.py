"""What the vmtune.libvirt modules share: run the installed vmtune CLI, read its JSON, hold the hook's lock.

The modules never import vmtune itself: they run the ``vmtune`` executable of the hypervisor (as an operator
would) and read its ``--json`` output, so the collection works with whichever vmtune the host has installed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import json
import os
import time

from ansible_collections.vmtune.libvirt.plugins.module_utils.knobs import KNOBS

HOOK_LOCK = "/run/vmtune/hook.lock"
"""The libvirt hook's lock (vmtune.adapters.hookenv.hook_lock): a module run and a guest start never
interleave their decide-and-write steps."""

COMMON_ARGS = dict(
    uri=dict(type="str", default="qemu:///system"),
    executable=dict(type="path"),
)


def knob_argument_spec():
    """The tuning options, one per vmtune knob (module_utils/knobs.py, derived from the intent model)."""
    spec = {}
    for row in KNOBS:
        entry = dict(type=row["type"])
        if "choices" in row:
            entry["choices"] = row["choices"]
        if "elements" in row:
            entry["elements"] = row["elements"]
        spec[row["option"]] = entry
    return spec


def knob_args(params):
    """The CLI flags for the knobs set in ``params`` (unset ones are left to the guest's stored intent)."""
    args = []
    for row in KNOBS:
        value = params.get(row["option"])
        if value is None:
            continue
        if row["type"] == "bool":
            if value:
                args.append(row["flag"])
            elif row.get("no_flag"):
                args.append(row["no_flag"])
        elif row["type"] == "list":
            args += [row["flag"], ",".join(str(v) for v in value)]
        else:
            args += [row["flag"], str(value)]
    return args


def vmtune_json(module, args, ok_codes=(0,)):
    """Run ``vmtune ARGS`` and return (its JSON output, its stderr); fail the task on another exit code."""
    exe = module.params.get("executable") or module.get_bin_path("vmtune", required=True)
    cmd = [exe] + list(args)
    rc, out, err = module.run_command(cmd)
    if rc not in ok_codes:
        module.fail_json(msg="vmtune failed (exit %d): %s" % (rc, _last_error(err)), rc=rc, cmd=cmd,
                         stderr=err, stdout=out)
    try:
        return json.loads(out), err
    except ValueError as exc:
        module.fail_json(msg="vmtune printed no JSON: %s" % exc, rc=rc, cmd=cmd, stderr=err, stdout=out)
    return None, err  # unreachable: fail_json exits


def _last_error(err):
    lines = [ln for ln in err.splitlines() if ln.startswith("vmtune: error:")]
    return lines[-1] if lines else (err.strip().splitlines() or ["no message"])[-1]


@contextlib.contextmanager
def hook_lock(module, path=HOOK_LOCK, timeout=120.0):
    """Hold the hook's exclusive flock; fail the task if a guest start keeps it longer than ``timeout``."""
    directory = os.path.dirname(path)
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        module.fail_json(msg="%s: cannot open the vmtune hook lock: %s" % (path, exc))
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    module.fail_json(msg="%s: not acquired within %ss: %s" % (path, timeout, exc))
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # closing drops the flock
