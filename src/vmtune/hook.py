"""libvirt hook entry (``/etc/libvirt/hooks/qemu.d/vmtune``): ``vmtune hook GUEST OP SUBOP EXTRA < XML``.

libvirt's contract (https://libvirt.org/hooks.html): the domain XML arrives on stdin; for
``migrate begin`` and ``restore begin`` whatever the hook prints on stdout *replaces* the XML (so print
nothing when nothing changes); a non-zero exit at ``prepare begin`` aborts the start and libvirt logs the
hook's stderr. The hook runs while libvirtd holds the domain's job: it must never open a libvirt
connection (that deadlocks), so everything comes from disk (``vmtune.adapters.hookenv``).

* ``prepare begin``: a guest with vmtune intent whose pins collide with a running (or starting) guest
  (VT104), or that asks for what this host can't provide (VT304 Hyper-V enlightenments, VT406 realtime
  without an RT budget), is refused with one stderr line. With an explicit ``--hugepages`` intent, its
  hugepages are reserved on its bound nodes (journalled, released at ``release end``).
* ``migrate begin`` / ``restore begin``: re-bind the incoming guest to *this* host with the stored intent
  (``vmtune.service.plan_document`` with ``keep_abi``): only pins and numatune move, never what the guest
  sees (libvirt checks the ABI of the output against the source's). A host that cannot hold the guest as
  it is refuses it with one stderr line and a non-zero exit, and libvirt aborts cleanly.
* ``prepare begin`` / ``release end`` also bring host isolation (``--isolate-host``, ``--power-idle``) to
  what the live guests need (``vmtune.adapters.isolation``): the host's cgroups, IRQs and workqueues kept off
  the CPUs isolating guests hold, journalled before each change, restored when the last one stops.
* ``started begin`` / ``stopped end`` / ``release end``: drop the guest's claim (``release end`` also
  gives its hugepages back); ``started begin`` raises a realtime guest's ``kvm-pit`` thread to SCHED_FIFO 2
  on vCPU 0's CPU, and never fails (libvirt would stop the guest).
* everything else: exit 0, no output.

Only guests that carry vmtune intent in ``<metadata>`` are touched; the hook is silent for the rest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, BinaryIO, TextIO

from vmtune.adapters.hookenv import (
    HookPaths,
    HugepageGrant,
    drop_claim,
    hook_lock,
    read_tenants,
    release_hugepages,
    reserve_hugepages,
    sweep,
    write_claim,
)
from vmtune.errors import ExitCode, InputError, VmtuneError

if TYPE_CHECKING:  # annotations only: `started begin` / `stopped end` must not pay for the core model
    from vmtune.core.guest import GuestSpec
    from vmtune.core.topology.caps import HostCaps
    from vmtune.core.topology.model import Host

__all__ = ["PREPARE_RULES", "hugepage_wants", "main", "recover", "run_hook"]

PREPARE_RULES = frozenset({"VT104", "VT304", "VT406"})
"""What makes ``prepare begin`` refuse a start: collisions and what the host can't provide."""
MAX_STDIN = 64 * 1024 * 1024


def _host(paths: HookPaths) -> Host:
    from vmtune.adapters.sysfs import read_sysfs

    return read_sysfs(paths.sysfs_root)


def _caps(paths: HookPaths) -> HostCaps | None:
    from vmtune.adapters.files import read_text
    from vmtune.adapters.probes import merge_caps, probe_host_caps
    from vmtune.xmlmap.domcaps import parse_domcapabilities

    domcaps = None
    if paths.domcaps is not None and paths.domcaps.is_file():
        domcaps = parse_domcapabilities(read_text(paths.domcaps), source=str(paths.domcaps))
    return merge_caps(domcaps, probe_host_caps(paths.sysfs_root))


def hugepage_wants(guest: GuestSpec, host: Host) -> tuple[HugepageGrant, ...]:
    """Pages per bound node the guest's ``<memoryBacking><hugepages>`` needs (opt-in: explicit intent).

    ``<memnode>`` cells say per node; otherwise the memory is split evenly over the numatune nodeset
    (libvirt's strict binding lets the kernel fill the nodes in order, so even is the safe upper bound
    per node only when rounded up).
    """
    intent, backing = guest.intent, guest.memory_backing
    if intent is None or intent.hugepages in (None, "none") or backing is None or not backing.hugepages:
        return ()
    size = backing.page_size_kib or {"2M": 2048, "1G": 1048576}.get(intent.hugepages or "", 2048)
    nodes = sorted(guest.numatune_nodeset) if guest.numatune_nodeset else [n.id for n in host.nodes[:1]]
    per_node: dict[int, int] = {}
    cells = {c.id: c.memory_kib for c in guest.numa_cells}
    if guest.memnodes and cells:
        for mn in guest.memnodes:
            targets = sorted(mn.nodeset)
            for node in targets:
                share = -(-cells.get(mn.cellid, 0) // len(targets))
                per_node[node] = per_node.get(node, 0) + share
    else:
        for node in nodes:
            per_node[node] = -(-guest.memory_kib // len(nodes))
    return tuple(
        HugepageGrant(node=node, size_kib=size, pages=-(-kib // size))
        for node, kib in sorted(per_node.items())
    )


def _prepare(xml: bytes, name: str, paths: HookPaths, err: TextIO) -> str | None:
    """None when the start may go on, else the one line to refuse it with."""
    from vmtune.core.audit.engine import run_rules
    from vmtune.core.ledger.tenant import others_of
    from vmtune.xmlmap.guest import read_guest

    guest = read_guest(xml, source=f"hook:{name}")
    if guest.intent is None:
        _back_online(paths, guest, err)
        return None
    with hook_lock(paths):
        _trusted_journal(paths, guest)
        sweep(paths)
        tenants = others_of(guest, read_tenants(paths))
        host = _host(paths)
        found = run_rules(host, [guest], tenants=tenants, caps=_caps(paths), select=PREPARE_RULES)
        if found:
            first = found[0]
            more = (
                f" (+{len(found) - 1} more: {', '.join(sorted({f.code for f in found[1:]}))})"
                if found[1:]
                else ""
            )
            return f"vmtune: refusing to start '{guest.name}': {first.code} {first.message}{more}"
        wants = hugepage_wants(guest, host)
        if wants:
            reserve_hugepages(paths, guest.name, wants)
        write_claim(paths, guest.name, xml)
        _isolate(paths, err, guest=guest, tenants=(*tenants, guest))
    return None


def _back_online(paths: HookPaths, guest: GuestSpec, err: TextIO) -> None:
    """Any guest, vmtune's or not, needs its CPUs online: a core a ``--power-idle offline`` guest left
    idle comes back (with its governor) before this one starts."""
    from vmtune.adapters.isolation import journal_exists

    if journal_exists(paths) and guest.vcpu_cpus:
        with hook_lock(paths):
            _isolate(paths, err, tenants=(*read_tenants(paths), guest))


def _trusted_journal(paths: HookPaths, guest: GuestSpec) -> None:
    """Refuse the start before anything is reserved or claimed when the isolation journal it would act on
    could have been written by another user (InputError, one line)."""
    from vmtune.adapters.isolation import holder_of, journal_exists, load_journal

    if journal_exists(paths) or holder_of(guest) is not None:
        load_journal(paths)


def _isolate(
    paths: HookPaths, err: TextIO, *, guest: GuestSpec | None = None, remove: str | None = None,
    tenants: tuple[GuestSpec, ...] | None = None,
) -> None:  # fmt: skip
    """Bring the host isolation to what the live guests need (``vmtune.adapters.isolation``); warnings
    go to stderr, one line each (libvirt logs them)."""
    from vmtune.adapters.isolation import holder_of, journal_exists, reconcile
    from vmtune.cpuset import CpuSet

    holder = holder_of(guest) if guest is not None else None
    if holder is None and not journal_exists(paths):
        return
    if tenants is None:
        tenants = read_tenants(paths)
    busy = CpuSet().union(*(t.vcpu_cpus for t in tenants if t.name != remove))
    add = (guest.name, holder) if guest is not None and holder is not None else None
    outcome = reconcile(paths, add=add, remove=remove, busy=busy)
    for line in outcome.warnings:
        print(f"vmtune: isolate: {line}", file=err)


def recover(paths: HookPaths) -> str:
    """``vmtune hook recover``: finish what a killed hook run left halfway; returns a one-line summary."""
    with hook_lock(paths):
        sweep(paths)
        from vmtune.adapters.isolation import reconcile
        from vmtune.cpuset import CpuSet

        tenants = read_tenants(paths)
        outcome = reconcile(paths, busy=CpuSet().union(*(t.vcpu_cpus for t in tenants)))
    for line in outcome.warnings:
        print(f"vmtune: isolate: {line}", file=sys.stderr)
    holders = ", ".join(outcome.holders) or "none"
    return f"vmtune: hook recover: {len(outcome.written)} file(s) written; isolating guests: {holders}"


def _started(xml: bytes, name: str, paths: HookPaths, err: TextIO) -> None:
    """Drop the claim; for a realtime guest, raise its KVM PIT thread (journalled for verify).

    libvirt stops a guest whose ``started`` hook fails, so nothing here may fail the start: whatever goes
    wrong with the PIT thread is one stderr line."""
    with hook_lock(paths):
        drop_claim(paths, name)
        if b"vmtune" not in xml:  # no vmtune metadata: the guest is not ours, skip parsing it
            return
        try:
            _raise_pit(xml, name, paths, err)
        except (VmtuneError, OSError) as why:
            print(f"vmtune: realtime: '{name}': kvm-pit thread left alone: {why}", file=err)


def _raise_pit(xml: bytes, name: str, paths: HookPaths, err: TextIO) -> None:
    from vmtune.adapters.isolation import Journal, load_journal, save_journal
    from vmtune.adapters.rtthreads import raise_pit
    from vmtune.core.intent.model import Profile
    from vmtune.core.tuning.rtthreads import pit_cpus, pit_raised
    from vmtune.xmlmap.guest import read_guest

    guest = read_guest(xml, source=f"hook:{name}")
    wants = guest.intent is not None and guest.intent.has(Profile.REALTIME)
    if not pit_raised(guest.vcpusched, wants_realtime=wants):
        return
    journal = load_journal(paths)  # refused before any change when another user could have written it
    record, notes = raise_pit(paths, guest.name, pit_cpus(guest.pin_of(0), guest.vcpu_cpus))
    for line in notes:
        print(f"vmtune: realtime: {line}", file=err)
    if record is not None:
        threads = {**journal.threads, guest.name: record}
        save_journal(paths, Journal(holders=journal.holders, saved=journal.saved, idle=journal.idle,
                                    threads=threads))  # fmt: skip


def _replan(xml: bytes, name: str, paths: HookPaths) -> bytes:
    """The rewritten XML, or b"" when this guest has no intent or nothing changes."""
    from vmtune.service import plan_document  # lazily: the no-op runs must not load the planner
    from vmtune.xmlmap.guest import read_guest

    source = f"hook:{name}"
    guest = read_guest(xml, source=source)
    if guest.intent is None:
        return b""
    with hook_lock(paths):
        sweep(paths)
        planned = plan_document(xml, source=source, host=_host(paths), tenants=read_tenants(paths),
                                intent=None, caps=_caps(paths), keep_abi=True)  # fmt: skip
        # the claim keeps parallel incoming guests off these CPUs until libvirt writes the status file
        write_claim(paths, guest.name, planned.after)
    return planned.after if planned.changed else b""


def _release(name: str, paths: HookPaths, err: TextIO) -> None:
    with hook_lock(paths):
        release_hugepages(paths, name)
        drop_claim(paths, name)
        _isolate(paths, err, remove=name)


def run_hook(
    argv: list[str],
    stdin: BinaryIO,
    stdout: BinaryIO,
    stderr: TextIO,
    *,
    env: Mapping[str, str] | None = None,
    paths: HookPaths | None = None,
) -> int:
    """Run one hook invocation; returns the exit code. Never raises for a VmtuneError."""
    paths = paths or HookPaths.from_env(env if env is not None else os.environ)
    if len(argv) < 3:
        print("vmtune hook: usage: vmtune hook GUEST OP SUBOP [EXTRA] < DOMAIN.xml", file=stderr)
        return int(ExitCode.BAD_INPUT)
    name, op, subop = argv[0], argv[1], argv[2]
    try:
        if op == "prepare" and subop == "begin":
            refusal = _prepare(_read_stdin(stdin), name, paths, stderr)
            if refusal:
                print(refusal, file=stderr)
                return int(ExitCode.INFEASIBLE)
        elif op in ("migrate", "restore") and subop == "begin":
            out = _replan(_read_stdin(stdin), name, paths)
            if out:
                stdout.write(out)
                stdout.flush()
        elif op == "release" and subop == "end":
            _release(name, paths, stderr)
        elif (op, subop) == ("started", "begin"):
            # running: libvirt's status file now speaks for the guest, the claim has done its job
            _started(stdin.read(MAX_STDIN), name, paths, stderr)
        elif (op, subop) == ("stopped", "end"):
            # nothing to protect any more (a start that failed after prepare gets here too)
            with hook_lock(paths):
                drop_claim(paths, name)
    except VmtuneError as err:
        print(f"vmtune: hook {op} {subop} '{name}': {err}", file=stderr)
        return int(err.exit_code)
    return int(ExitCode.OK)


def _read_stdin(stdin: BinaryIO) -> bytes:
    data = stdin.read(MAX_STDIN + 1)
    if len(data) > MAX_STDIN:
        raise InputError("stdin: domain XML larger than 64 MiB")
    if not data.strip():
        raise InputError("stdin: no domain XML (libvirt passes it on stdin)")
    return data


def main() -> int:
    """``python -m vmtune.hook GUEST OP SUBOP EXTRA``: what the installed hook script execs (no typer)."""
    return run_hook(sys.argv[1:], sys.stdin.buffer, sys.stdout.buffer, sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
