"""The body of `vmtune plan` / `vmtune apply`: gather host + tenants, plan each file through the service
(``vmtune.service.plan_document``), write, show the results.

Each file is independent: an error becomes that file's ``failed`` row and never touches the others.
Writes are atomic, keep the replaced file's owner, mode and links, and are refused when the file changed
since it was read (``service.write_document``); two inputs that would write one file are refused up front.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vmtune.adapters.files import read_bytes
from vmtune.adapters.libvirt import open_host
from vmtune.cli.tuning import Tuning, host_caps
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Intent
from vmtune.errors import ExitCode, InputError, VmtuneError, in_file
from vmtune.render.console import make_console
from vmtune.render.plan import FileRow, plan_json, print_diff, print_notes, print_summary
from vmtune.service import (
    HostSource,
    Planned,
    load_host,
    load_tenants,
    next_tenants,
    plan_document,
    write_document,
)
from vmtune.xmlmap.safe import parse_xml

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["domain_files", "expand_paths", "plan", "run"]


def plan(
    files: Sequence[Path],
    *,
    sysfs: Path | None,
    capabilities: Path | None,
    connect: str | None,
    domcapabilities: Path | None,
    domains: Path | None,
    json_out: bool,
    explain: bool,
    tuning: Tuning,
) -> int:
    """`vmtune plan` with its options parsed by typer (plan_cmd)."""
    return run(
        files, host=HostSource(sysfs=sysfs, capabilities=capabilities, connect=connect),
        domcaps=domcapabilities, domains=domains, tuning=tuning, json_out=json_out, explain=explain,
    )  # fmt: skip


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories become their ``*.xml`` domain files (sorted, not recursive)."""
    out = domain_files(paths)
    if not out:
        raise InputError("no domain XML files given (directories are searched for *.xml)")
    return out


def domain_files(paths: Iterable[Path], *, recursive: bool = False) -> list[Path]:
    """Files as given, and the ``<domain>`` documents of each directory (``recursive``: of its subfolders
    too), each file once.

    A libvirt config folder holds other documents too (``networks/default.xml``, storage pools): they are
    skipped with a note. A file reached through several paths (``autostart/X.xml -> ../X.xml``) is one
    guest, not two colliding ones: it is kept under its first real path, symlinks last.
    """
    out: list[Path] = []
    seen: dict[Path, Path] = {}
    skipped: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found = path.rglob("*.xml") if recursive else path.glob("*.xml")
            files = sorted((p for p in found if p.is_file()), key=lambda p: (p.is_symlink(), p))
        else:
            files = [path]  # named explicitly: kept, and a missing file fails with its path named
        for file in files:
            real = file.resolve() if file.exists() else file
            if real in skipped:
                continue
            if real in seen:
                _note(f"{file}: the same file as {seen[real]}, counted once")
                continue
            if file is not path and not _is_domain(file):
                skipped.add(real)
                continue
            seen[real] = file
            out.append(file)
    return out


def _is_domain(path: Path) -> bool:
    """False for a well-formed document whose root is not ``<domain>`` (noted); a file that can't be read
    or parsed counts as a domain, so its own error is reported where it is planned."""
    try:
        root = parse_xml(read_bytes(path), source=str(path)).getroot()
    except VmtuneError:
        return True
    tag = root.tag.rpartition("}")[2] if isinstance(root.tag, str) else ""
    if tag == "domain":
        return True
    _note(f"{path}: <{tag}> document, not a domain: skipped")
    return False


def _note(text: str) -> None:
    print(f"vmtune: note: {text}", file=sys.stderr)


def _check_targets(files: list[Path], write_to: Path | None, in_place: bool, backup: bool) -> None:
    if write_to is not None and in_place:
        raise InputError("choose one of -o OUT and --in-place")
    if write_to is None and not in_place:
        raise InputError("vmtune apply needs -o OUT or --in-place (use vmtune plan to only look)")
    if backup and not in_place:
        raise InputError("--backup goes with --in-place")
    if write_to is not None and len(files) > 1 and not write_to.is_dir():
        raise InputError(f"-o {write_to}: must be an existing directory when applying {len(files)} files")
    _check_distinct(files, write_to)


def _check_distinct(files: list[Path], write_to: Path | None) -> None:
    """Two inputs that write one file (``-o DIR a/x.xml b/x.xml``, or a file and a symlink to it) would
    keep only the last plan: refused before anything is written."""
    seen: dict[str, Path] = {}
    for path in files:
        target = _target(path, write_to)
        key = os.path.realpath(target)
        if key in seen:
            raise InputError(f"{seen[key]} and {path} would both write {target}; nothing written")
        seen[key] = path


def _target(path: Path, write_to: Path | None) -> Path:
    if write_to is None:
        return path
    return write_to / path.name if write_to.is_dir() else write_to


def run(
    paths: Sequence[Path],
    *,
    host: HostSource,
    domcaps: Path | None,
    domains: Path | None,
    tuning: Tuning,
    json_out: bool = False,
    explain: bool = False,
    write_to: Path | None = None,
    in_place: bool = False,
    backup: bool = False,
    apply: bool = False,
) -> int:
    """Process every file; return the exit code (the worst failure, 0 when all went well)."""
    files = expand_paths(paths)
    if apply:
        _check_targets(files, write_to, in_place, backup)
    tuning.intent()  # validate the flags once, before any file is read
    topology = load_host(host, libvirt=open_host)
    caps = host_caps(host, domcaps)
    tenants: list[GuestSpec] = load_tenants(domains) if domains is not None else []

    def intent_of(guest: GuestSpec) -> Intent:
        return tuning.intent(guest.intent)

    out = _console(stderr=False)
    err = _console(stderr=True)
    notes_to = out if explain else err
    single = len(files) == 1
    rows: list[FileRow] = []
    docs: list[dict[str, object]] = []
    worst = 0
    progress = _progress(err, len(files)) if not single else None
    for path in files:
        try:
            prep = plan_document(read_bytes(path), source=str(path), host=topology, tenants=tenants,
                                 intent=intent_of, caps=caps, label=path.name)  # fmt: skip
            if apply and (prep.changed or write_to is not None):
                write_document(prep, path, _target(path, write_to), backup=backup)
            tenants = next_tenants(tenants, prep)
        except VmtuneError as error:
            if single:
                raise
            worst = max(worst, int(error.exit_code))
            rows.append(FileRow(path=str(path), status="failed", reason=str(error)))
            _line(err, f"vmtune: error: {in_file(error, str(path))}", soft_wrap=True)
        else:
            rows.append(FileRow(path=str(path), status="changed" if prep.changed else "unchanged"))
            _show(prep, out, notes_to, json_out=json_out, apply=apply, docs=docs)
        if progress is not None:
            progress[0].advance(progress[1])
    if progress is not None:
        progress[0].stop()
    if json_out:
        print(json.dumps(docs[0] if single and docs else docs, indent=2))
    if not single:
        print_summary(out if apply else err, rows, title="vmtune apply" if apply else "vmtune plan")
    elif apply and rows:
        _line(err, f"{rows[0].path}: {rows[0].status}", soft_wrap=False)
    return worst if worst else int(ExitCode.OK)


def _console(*, stderr: bool) -> Console:
    return make_console(stderr=stderr)


def _line(console: Console, text: str, *, soft_wrap: bool) -> None:
    console.print(text, soft_wrap=soft_wrap, markup=False)


def _show(prep: Planned, out: Console, notes_to: Console, *, json_out: bool, apply: bool,
          docs: list[dict[str, object]]) -> None:  # fmt: skip
    if json_out:
        docs.append(plan_json(prep.plan, source=prep.source, changed=prep.changed))
        return
    if not apply:
        print_diff(out, prep.diff())
    print_notes(notes_to, prep.plan, source=prep.source)


def _progress(err: Console, total: int) -> tuple[Progress, TaskID] | None:
    """A rich progress bar on stderr, only when stderr is a terminal (never in pipes or logs)."""
    if not err.is_terminal:
        return None
    from rich.progress import Progress

    progress = Progress(console=err, transient=True)
    task = progress.add_task("vmtune", total=total)
    progress.start()
    return progress, task
