"""The use cases: plan one domain document for a host and its tenants; load hosts and tenants; apply.

Every entry plans through :func:`plan_document`: ``vmtune plan``/``apply`` on files, ``check --fix``, the
libvirt hook and ``apply --connect`` (:func:`apply_domain`). The adapters do the IO; this module decides
the order of the steps. It never loads the libvirt adapter itself (the hook imports this module, and the
hook must never talk to libvirtd): what needs libvirt is handed a connection (:class:`Libvirt`) or a
reader by the caller.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vmtune.adapters.files import atomic_write, read_bytes, read_text
from vmtune.adapters.snapshot import read_snapshot
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Intent
from vmtune.core.ledger.tenant import as_planned, others_of
from vmtune.core.plan import Plan
from vmtune.core.planner import plan_guest
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.verify.readback import owned_mismatches
from vmtune.errors import InputError, LibvirtError, VmtuneError
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.capabilities import parse_capabilities
from vmtune.xmlmap.diff import detect_style, serialize, unified_diff
from vmtune.xmlmap.guest import read_guest
from vmtune.xmlmap.safe import parse_xml
from vmtune.xmlmap.validate import validate_output

__all__ = [
    "Applied",
    "HostSource",
    "IntentChoice",
    "Libvirt",
    "Planned",
    "apply_domain",
    "load_host",
    "load_tenants",
    "next_tenants",
    "plan_document",
    "plan_domain",
    "same_file",
    "write_document",
]

IntentChoice = Callable[[GuestSpec], Intent] | Intent | None
"""What to plan with: a function of the guest (flags over its stored intent), one Intent, or None for the
intent stored in the guest's ``<metadata>``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    """One document planned: the plan (its notes), the document before and after, and the guest as a tenant
    of the next document."""

    source: str
    raw: bytes
    guest: GuestSpec
    plan: Plan
    before: bytes
    """serialize(parse(raw)): the like-with-like baseline of the diff."""
    after: bytes
    new_guest: GuestSpec
    label: str
    """The file name the diff shows."""

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        """Computed on demand: the hook and a JSON batch never show it."""
        return unified_diff(self.before, self.after, name=self.label)


def _intent(choice: IntentChoice, guest: GuestSpec, source: str) -> Intent:
    if callable(choice):
        return choice(guest)
    chosen = choice or guest.intent
    if chosen is None:
        raise InputError(f"{source}: no vmtune intent in <metadata> and no tuning options given")
    return chosen


def plan_document(
    raw: bytes,
    *,
    source: str,
    host: Host,
    tenants: Sequence[GuestSpec],
    intent: IntentChoice,
    caps: HostCaps | None,
    label: str | None = None,
    keep_abi: bool = False,
) -> Planned:
    """Plan the domain XML ``raw`` next to ``tenants`` (the guest itself among them is left out) and apply
    the plan to the document. ``label`` names the document in the diff (default ``source``).

    ``keep_abi`` (the hook's incoming guests): only the host binding changes, as libvirt's ABI check on a
    migration or restore demands; the guest keeps its IOThreads whatever the intent says."""
    doc = parse_xml(raw, source=source, root="domain")
    guest = read_guest(doc, source=source)
    chosen = _intent(intent, guest, source)
    if keep_abi:
        chosen = dataclasses.replace(chosen, iothreads=guest.iothreads, reshape=False)
    plan = plan_guest(host=host, guest=guest, tenants=others_of(guest, tenants), intent=chosen, caps=caps,
                      keep_abi=keep_abi)  # fmt: skip
    style = detect_style(raw, doc)
    return Planned(
        source=source,
        raw=raw,
        guest=guest,
        plan=plan,
        before=serialize(doc, style),
        after=serialize(apply_plan(doc, plan), style),
        new_guest=as_planned(guest, plan),
        label=source if label is None else label,
    )


def next_tenants(tenants: Sequence[GuestSpec], planned: Planned) -> list[GuestSpec]:
    """The tenants of the next document of a batch: this guest as planned replaces its older copy."""
    return [*others_of(planned.guest, tenants), planned.new_guest]


def write_document(
    planned: Planned,
    path: Path,
    out: Path,
    *,
    backup: bool = False,
    schema: Path | None = None,
    before_commit: Callable[[], None] | None = None,
) -> None:
    """Validate the new XML and replace ``out`` atomically (``adapters.files.atomic_write``: owner, mode,
    xattrs and symlinks kept), refusing when ``path`` no longer holds the bytes that were planned.

    In place, that check runs right before the rename, after ``before_commit`` (a test's chance to edit
    the file at the worst moment). A new ``-o`` file takes the input's mode; an existing one keeps its own.
    """
    validate_output(planned.raw, planned.after, schema=schema, source=str(path))
    in_place = same_file(path, out)
    mode = None
    if not in_place:
        if read_bytes(path) != planned.raw:
            raise InputError(f"{path}: changed while planning, nothing written")
        if not out.exists():
            try:
                mode = path.stat().st_mode & 0o7777
            except OSError:
                mode = None
    atomic_write(out, planned.after, mode=mode, backup=backup, expected=planned.raw if in_place else None,
                 before_commit=before_commit)  # fmt: skip


def same_file(a: Path, b: Path) -> bool:
    """Whether writing ``b`` replaces ``a`` (the same path once symlinks are resolved)."""
    return os.path.realpath(a) == os.path.realpath(b)


# -- hosts and tenants ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSource:
    sysfs: Path | None = None
    capabilities: Path | None = None
    connect: str | None = None


def load_host(src: HostSource, *, libvirt: Callable[[str], Host]) -> Host:
    """Read the host topology from exactly one source; default: the live sysfs at /.

    ``libvirt`` reads the host of a URI (``adapters.libvirt.open_host``), passed in by the CLI.
    """
    chosen = [name for name, val in (("--sysfs", src.sysfs), ("--capabilities", src.capabilities),
                                     ("--connect", src.connect)) if val is not None]  # fmt: skip
    if len(chosen) > 1:
        raise InputError(f"choose one host source, not {' and '.join(chosen)}")
    if src.capabilities is not None:
        return parse_capabilities(read_text(src.capabilities), source=str(src.capabilities))
    if src.connect is not None:
        return libvirt(src.connect)
    root = src.sysfs or Path("/")
    if root.is_file():  # `vmtune host snapshot` output: read in memory, its files named below the archive
        snap = read_snapshot(root)
        host = read_sysfs(root, tree=snap.tree)
        return dataclasses.replace(host, warnings=(*host.warnings, snap.note)) if snap.note else host
    return read_sysfs(root)


def load_tenants(
    directory: Path, *, on_error: Callable[[VmtuneError], None] | None = None
) -> list[GuestSpec]:
    """Every domain XML (``*.xml``) in ``directory`` as a tenant of the host.

    A directory that is not there is an InputError naming ``--domains``. A bad tenant file is an error
    naming that file (a wrong tenant would silently give its CPUs away), unless ``on_error`` takes it:
    then it is reported there and left out.
    """
    if not directory.is_dir():
        raise InputError(f"--domains {directory}: not a directory")
    tenants = []
    for path in sorted(p for p in directory.glob("*.xml") if p.is_file()):
        try:
            tenants.append(read_guest(read_bytes(path), source=str(path)))
        except VmtuneError as err:
            if on_error is None:
                raise
            on_error(err)
    return tenants


# -- apply through libvirt --------------------------------------------------------------------------------


class Libvirt(Protocol):
    """The libvirt primitives applying needs (``adapters.libvirt.Connection``)."""

    uri: str

    def host(self) -> Host: ...
    def caps(self, guest: GuestSpec | None = None) -> HostCaps | None: ...
    def tenants(self) -> tuple[GuestSpec, ...]: ...
    def domain_xml(self, name: str, *, inactive: bool) -> str: ...
    def define_validated(self, name: str, xml: str) -> None: ...
    def restore_definition(self, name: str, xml: str) -> None: ...
    def is_running(self, name: str) -> bool: ...
    def repin(self, name: str, plan: Plan) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    domain: str
    plan: Plan
    diff: str
    defined: bool
    running: bool = False
    live_now: tuple[str, ...] = ()
    """Changes that took effect on the running guest now (``--live``)."""
    needs_restart: tuple[str, ...] = ()
    """Owned sections that differ between the running guest and its new definition."""
    before: str = ""
    after: str = ""
    """The inactive definition before and after, as the diff compares them (``--json`` shows both)."""


def plan_domain(conn: Libvirt, name: str, intent_for: Callable[[Intent | None], Intent]) -> Planned:
    """Plan domain ``name``'s inactive definition next to the connection's other guests; define nothing
    (``apply_domain`` and ``vmtune plan --domain`` share it, so a dry run predicts the real one)."""
    source = f"libvirt:{name}"
    original = conn.domain_xml(name, inactive=True)
    current = read_guest(original, source=source)
    return plan_document(
        original.encode("utf-8"), source=source, host=conn.host(), tenants=conn.tenants(),
        intent=intent_for(current.intent), caps=conn.caps(current),
    )  # fmt: skip


def apply_domain(
    conn: Libvirt, name: str, intent_for: Callable[[Intent | None], Intent], *, live: bool = False
) -> Applied:
    """Plan domain ``name``, define it, check the read-back, and with ``live`` re-pin it now.

    ``intent_for(stored)`` turns the domain's stored intent (None if never tuned) into the one to plan
    with (the CLI's TUNING flags win over the stored intent).
    """
    planned = plan_domain(conn, name, intent_for)
    original = planned.raw.decode("utf-8")
    source = planned.source
    diff = planned.diff()
    before, after = planned.before.decode("utf-8"), planned.after.decode("utf-8")
    defined = False
    if planned.changed:
        _define_checked(conn, name, planned, original)
        defined = True
    if not conn.is_running(name):
        return Applied(domain=name, plan=planned.plan, diff=diff, defined=defined, before=before, after=after)
    now = conn.repin(name, planned.plan) if live else ()
    live_guest = read_guest(conn.domain_xml(name, inactive=False), source=source)
    return Applied(domain=name, plan=planned.plan, diff=diff, defined=defined, running=True, live_now=now,
                   needs_restart=owned_mismatches(planned.plan, live_guest), before=before,
                   after=after)  # fmt: skip


def _define_checked(conn: Libvirt, name: str, planned: Planned, original: str) -> None:
    """libvirt silently drops what it does not understand: compare the read-back, restore on a loss."""
    conn.define_validated(name, planned.after.decode("utf-8"))
    back = read_guest(conn.domain_xml(name, inactive=True), source=planned.source)
    lost = owned_mismatches(planned.plan, back)
    if lost:
        # nothing is written when anything fails (DESIGN.md)
        conn.restore_definition(name, original)
        raise LibvirtError(
            f"defineXML of domain '{name}' on {conn.uri}: libvirt did not keep {'; '.join(lost)} "
            "(old definition restored)"
        )
