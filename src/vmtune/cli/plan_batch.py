"""One file through read -> plan -> apply -> (validate -> write), for ``vmtune plan`` and ``vmtune apply``.

Each file is independent: an error becomes that file's ``failed`` row and never touches the others.
Writes are atomic (``adapters.files.atomic_write``) and refused when the file changed since it was read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Intent
from vmtune.core.plan import Plan
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.errors import InputError
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.diff import detect_style, serialize, unified_diff
from vmtune.xmlmap.guest import read_guest
from vmtune.xmlmap.safe import parse_xml

__all__ = ["Planner", "Prepared", "expand_paths", "planner_for", "prepare", "write"]

Planner = Callable[[GuestSpec, Sequence[GuestSpec]], Plan]
"""(guest, tenants) -> Plan; the CLI binds host, intent and caps."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    path: Path
    raw: bytes
    guest: GuestSpec
    plan: Plan
    before: bytes
    after: bytes
    new_guest: GuestSpec

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return unified_diff(self.before, self.after, name=self.path.name)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories become their ``*.xml`` files (sorted, not recursive)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.glob("*.xml") if p.is_file()))
        else:
            out.append(path)
    if not out:
        raise InputError("no domain XML files given (directories are searched for *.xml)")
    return out


def planner_for(*, host: Host, intent_of: Callable[[GuestSpec], Intent], caps: HostCaps | None) -> Planner:
    """Bind the real planner (imported lazily: it is the heaviest part of the start-up)."""
    from vmtune.core.planner import plan_guest

    def run(guest: GuestSpec, tenants: Sequence[GuestSpec]) -> Plan:
        return plan_guest(host=host, guest=guest, tenants=tenants, intent=intent_of(guest), caps=caps)

    return run


def prepare(path: Path, planner: Planner, tenants: Sequence[GuestSpec]) -> Prepared:
    from vmtune.adapters.files import read_bytes

    raw = read_bytes(path)
    source = str(path)
    doc = parse_xml(raw, source=source, root="domain")
    guest = read_guest(doc, source=source)
    others = [t for t in tenants if t.name != guest.name or not guest.name]
    plan = planner(guest, others)
    style = detect_style(raw, doc)
    new_doc = apply_plan(doc, plan)
    return Prepared(
        path=path,
        raw=raw,
        guest=guest,
        plan=plan,
        before=serialize(doc, style),
        after=serialize(new_doc, style),
        new_guest=_as_planned(guest, plan),
    )


def _as_planned(guest: GuestSpec, plan: Plan) -> GuestSpec:
    """The guest as the next file of a batch sees it: a tenant owning the CPUs and nodes just planned.

    Cheaper than re-reading the new tree (batch speed); only the fields tenants are judged by change.
    """
    changes: dict[str, object] = {}
    for name in ("vcpupins", "emulatorpin", "iothreadpins", "vcpusched", "vcpu_cpuset", "intent"):
        value = getattr(plan, name)
        if value is not None:
            changes[name] = value
    if plan.numatune is not None:
        changes |= {"numatune_mode": plan.numatune.mode, "numatune_nodeset": plan.numatune.nodeset,
                    "memnodes": plan.numatune.memnodes}  # fmt: skip
    return dataclasses.replace(guest, **changes)  # type: ignore[arg-type]


def write(prep: Prepared, out: Path, *, backup: bool = False, schema: Path | None = None) -> None:
    """Validate the new XML, check the input is unchanged, then replace ``out`` atomically."""
    from vmtune.adapters.files import atomic_write, read_bytes
    from vmtune.xmlmap.validate import validate_domain

    validate_domain(parse_xml(prep.after, source=str(out), root="domain"), schema, source=str(prep.path))
    if read_bytes(prep.path) != prep.raw:
        raise InputError(f"{prep.path}: changed since vmtune read it; nothing written, run again")
    mode = None
    if out != prep.path:
        try:
            mode = prep.path.stat().st_mode & 0o7777
        except OSError:
            mode = None
    atomic_write(out, prep.after, mode=mode, backup=backup)
