"""`vmtune check FILE...|DIR [HOST] [--domains DIR] [--json|--sarif] [--select/--ignore CODES] [--fix]`.

Gather (guest XML files, tenants, host topology, host caps) -> ``core.audit.run_rules`` -> render. Every
guest named on the command line is checked; ``--domains`` tenants only take part in the cross-guest rules.
A file that can't be read is reported on stderr and skipped (the others are still checked) and makes the
exit code 2; otherwise exit 5 when a finding at or above ``--fail-on`` (default: error) remains, else 0.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import typer

from vmtune.adapters.files import atomic_write, read_bytes, read_text
from vmtune.adapters.libvirt import connect, is_local, live_domcaps, open_host
from vmtune.adapters.probes import merge_caps, probe_host_caps
from vmtune.cli.common import (
    CAPABILITIES_OPT,
    CONNECT_MANY_OPT,
    DOMAINS_OPT,
    DOMCAPS_OPT,
    JSON_OPT,
    SYSFS_OPT,
    HostSource,
)
from vmtune.cli.compat import App
from vmtune.cli.fleet import check_fleet, findings_exit, refuse_single_host_flags
from vmtune.cli.plan_run import domain_files
from vmtune.cli.textfile import TEXTFILE_OPT, write_check_textfile
from vmtune.cli.tuning import host_caps
from vmtune.core.audit.engine import Finding, catalog, parse_codes, run_rules
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Settings, with_settings
from vmtune.core.ledger.tenant import same_guest
from vmtune.core.plan import Level
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import ExitCode, InputError, VmtuneError, in_file
from vmtune.render.check import render_json, render_sarif, render_table
from vmtune.render.console import make_console
from vmtune.service import load_host, load_tenants, plan_document
from vmtune.xmlmap.domcaps import parse_domcapabilities
from vmtune.xmlmap.guest import read_guest
from vmtune.xmlmap.lines import SourceMap
from vmtune.xmlmap.validate import validate_output

__all__ = ["check_help", "live_inputs", "register", "run_check", "run_fleet"]

TARGETS_ARG: list[Path] | None = typer.Argument(
    None, help="Domain XML files, or directories searched for *.xml.", metavar="FILE...|DIR"
)
SARIF_OPT: bool = typer.Option(False, "--sarif", help="Print SARIF 2.1.0 (for CI systems and editors).")
SELECT_OPT: str | None = typer.Option(
    None, "--select", help="Only these rule codes or prefixes (VT101,VT2).", metavar="CODES"
)
IGNORE_OPT: str | None = typer.Option(
    None, "--ignore", help="Skip these rule codes or prefixes.", metavar="CODES"
)
RESERVE_OPT: str | None = typer.Option(
    None, "--reserve", help="Host housekeeping CPUs no guest should be pinned to.", metavar="CPUSET"
)
ALL_OPT: bool = typer.Option(False, "--all", help="With --connect: also check defined, inactive domains.")
FIX_OPT: bool = typer.Option(
    False, "--fix", help="Plan and apply (in place) every guest with findings, then re-check."
)
FAIL_ON_OPT: Level = typer.Option(
    Level.ERROR, "--fail-on", help="Exit 5 when a finding is at or above this severity.", case_sensitive=False
)


def check_help() -> str:
    """The command help: what it does plus the whole rule catalog, one code per line."""
    lines = [
        "Audit domains against the host; exit 5 on a finding at or above --fail-on (default: error).",
        "",
        "Rules (codes are stable; docs/rules/VTnnn.md says why each matters and how to fix it):",
        "",
        "\b",  # click: keep the following lines as they are (no re-wrapping)
    ]
    lines += [f"{r.code}  {r.title}" for r in catalog()]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Loaded:
    guests: tuple[GuestSpec, ...]
    failed: int
    maps: dict[str, SourceMap] = field(default_factory=dict)
    """Each file-backed guest's parsed tree and bytes, by ``GuestSpec.source``: findings' lines come from
    the tree already parsed for the audit instead of a second parse."""


def _xml_files(targets: list[Path]) -> list[Path]:
    for target in targets:
        if target.is_dir() and not any(p.is_file() for p in target.rglob("*.xml")):
            print(f"vmtune: warning: {target}: no *.xml files", file=sys.stderr)
    return domain_files(targets, recursive=True)


def _read_guests(paths: list[Path]) -> _Loaded:
    guests: list[GuestSpec] = []
    maps: dict[str, SourceMap] = {}
    failed = 0
    for path in paths:
        source = str(path)
        try:
            doc = SourceMap.parse(read_bytes(path), source=source, root="domain")
            guests.append(read_guest(doc.tree, source=source))
        except VmtuneError as err:
            # one bad file never hides the findings of the others
            print(f"vmtune: error: {err}", file=sys.stderr)
            failed += 1
            continue
        maps[source] = doc
    return _Loaded(guests=tuple(guests), failed=failed, maps=maps)


def _with_lines(findings: tuple[Finding, ...], maps: dict[str, SourceMap]) -> tuple[Finding, ...]:
    """Each finding with the line (and column) its XPath points at in its file; CPU-list locations and
    libvirt domains (no file) keep None."""
    out: list[Finding] = []
    for f in findings:
        doc = maps.get(f.source)
        pos = doc.locate(f.location) if doc is not None else None
        out.append(f if pos is None else replace(f, line=pos.line, column=pos.column))
    return tuple(out)


def _tenants(domains: Path | None, targets: tuple[GuestSpec, ...]) -> tuple[GuestSpec, ...]:
    """The ``--domains`` guests that are not a target themselves (a target listed there is the same guest,
    not a rival tenant); a bad file is reported and left out, like a bad target."""
    if domains is None:
        return ()
    loaded = load_tenants(domains, on_error=lambda err: print(f"vmtune: error: {err}", file=sys.stderr))
    return tuple(t for t in loaded if not any(same_guest(t, g) for g in targets))


def live_inputs(
    uri: str, domcaps: Path | None, *, all_domains: bool
) -> tuple[Host, HostCaps | None, tuple[GuestSpec, ...], tuple[GuestSpec, ...]]:
    """Host, caps and domains of a libvirt connection: running domains are checked (``--all``: every
    defined one); the others are tenants. Running domains carry their live pins."""

    # an audit only reads: a read-only connection works for unprivileged users too
    with connect(uri, readonly=True) as conn:
        host = conn.host()
        everyone = conn.tenants()
        caps = merge_caps(conn.host_caps(), probe_host_caps(Path("/")) if is_local(uri) else None)
    live: HostCaps | None = None
    if domcaps is not None:  # an explicit file wins over what the connection says
        live = parse_domcapabilities(read_text(domcaps), source=str(domcaps))
    else:
        # libvirt gives domcapabilities only to a connection allowed to write: tried apart from the audit's
        live = live_domcaps(uri, _domcaps_note)
    caps = merge_caps(live, caps)
    targets = tuple(g for g in everyone if all_domains or g.running)
    if not targets:
        print(
            f"vmtune: note: no domains to check on {uri} (--all adds defined, inactive ones)", file=sys.stderr
        )
    return host, caps, targets, tuple(g for g in everyone if not (all_domains or g.running))


def _domcaps_note(why: str) -> None:
    print(f"vmtune: note: {why}; pass --domcapabilities FILE for the Hyper-V checks", file=sys.stderr)


def _fix(
    host: Host,
    guests: tuple[GuestSpec, ...],
    tenants: tuple[GuestSpec, ...],
    caps: HostCaps | None,
    findings: tuple[Finding, ...],
    *,
    maps: dict[str, SourceMap],
) -> tuple[GuestSpec, ...]:
    """Re-plan and rewrite each file-backed guest with findings; returns the guests as re-read (and puts
    the new documents in ``maps``, so what remains is located in the rewritten files)."""
    # each guest is planned as its findings' printed fixes would: their settings over its stored intent
    settings: dict[str, Settings] = {}
    for f in findings:
        settings[f.source] = (*settings.get(f.source, ()), *f.settings)
    current = list(guests)
    writes: list[tuple[Path, bytes]] = []
    for i, guest in enumerate(current):
        if guest.source not in settings or guest.source.startswith("libvirt:"):
            continue
        path = Path(guest.source)
        others = [*current, *tenants]
        intent = with_settings(guest.intent, settings[guest.source])
        try:
            planned = plan_document(read_bytes(path), source=guest.source, host=host, tenants=others,
                                    intent=intent, caps=caps)  # fmt: skip
        except VmtuneError as err:
            raise in_file(err, guest.source) from None
        validate_output(planned.raw, planned.after, source=planned.source)
        if planned.after != planned.raw:
            writes.append((path, planned.after))
        # the next guest is planned around this one's new pins
        maps[guest.source] = SourceMap.parse(planned.after, source=guest.source, root="domain")
        current[i] = read_guest(maps[guest.source].tree, source=guest.source)
    # plan everything first, write after: an infeasible guest leaves every file as it was
    for path, data in writes:
        atomic_write(path, data)
        print(f"vmtune: fixed {path}", file=sys.stderr)
    return tuple(current)


def run_check(
    *,
    targets: list[Path] | None,
    src: HostSource,
    domains: Path | None,
    domcaps: Path | None,
    all_domains: bool,
    as_json: bool,
    as_sarif: bool,
    select: str | None,
    ignore: str | None,
    reserve: str | None,
    fix: bool,
    fail_on: Level = Level.ERROR,
    textfile: Path | None = None,
) -> int:
    if as_json and as_sarif:
        raise InputError("--json and --sarif: choose one")
    if all_domains and src.connect is None:
        raise InputError("--all only applies with --connect")
    if src.connect is None and not targets:
        raise InputError("give domain XML files or a directory to check (vmtune check FILE...|DIR)")
    selected = parse_codes(select, what="--select") if select else None
    ignored = parse_codes(ignore, what="--ignore") if ignore else frozenset()
    reserved = CpuSet.parse(reserve, what="--reserve") if reserve else None

    if src.connect is not None and not targets:
        host, caps, guests, tenants = live_inputs(src.connect, domcaps, all_domains=all_domains)
        loaded = _Loaded(guests=guests, failed=0)
    else:
        loaded = _read_guests(_xml_files(targets or []))
        host = load_host(src, libvirt=open_host)
        caps = host_caps(src, domcaps)
        tenants = _tenants(domains, loaded.guests)

    def audit(guests: tuple[GuestSpec, ...]) -> tuple[Finding, ...]:
        return run_rules(host, guests, tenants=tenants, caps=caps, reserved=reserved,
                         select=selected, ignore=ignored)  # fmt: skip

    guests = loaded.guests
    findings = audit(guests)
    if fix and findings:
        if any(f.source.startswith("libvirt:") for f in findings):
            print("vmtune: note: --fix rewrites files only; for libvirt domains run "
                  "`vmtune apply --connect URI --domain NAME`", file=sys.stderr)  # fmt: skip
        guests = _fix(host, guests, tenants, caps, findings, maps=loaded.maps)
        findings = audit(guests)
    findings = _with_lines(findings, loaded.maps)

    if as_json:
        print(render_json(findings, len(guests)))
    elif as_sarif:
        print(render_sarif(findings, catalog()))
    else:
        render_table(make_console(), findings, len(guests))
    write_check_textfile(textfile, findings)
    if loaded.failed:
        return int(ExitCode.BAD_INPUT)
    return findings_exit(findings, fail_on)


def run_fleet(
    uris: list[str],
    *,
    targets: list[Path] | None,
    others: dict[str, object],
    all_domains: bool,
    as_json: bool,
    select: str | None,
    ignore: str | None,
    reserve: str | None,
    fail_on: Level = Level.ERROR,
) -> int:
    """`check --connect A --connect B ...`: every host's running (``--all``: defined) domains, in parallel."""
    if targets:
        raise InputError("FILE... and several --connect: check files against one host, or a fleet's domains")
    refuse_single_host_flags(others)
    return check_fleet(
        uris,
        all_domains=all_domains,
        as_json=as_json,
        reserved=CpuSet.parse(reserve, what="--reserve") if reserve else None,
        select=parse_codes(select, what="--select") if select else None,
        ignore=parse_codes(ignore, what="--ignore") if ignore else frozenset(),
        fail_on=fail_on,
    )


def register(app: App) -> None:
    @app.command("check", help=check_help(), no_args_is_help=True)
    def check_cmd(
        *,
        targets: list[Path] | None = TARGETS_ARG,
        sysfs: Path | None = SYSFS_OPT,
        capabilities: Path | None = CAPABILITIES_OPT,
        connect: list[str] | None = CONNECT_MANY_OPT,
        all_domains: bool = ALL_OPT,
        domains: Path | None = DOMAINS_OPT,
        domcapabilities: Path | None = DOMCAPS_OPT,
        as_json: bool = JSON_OPT,
        as_sarif: bool = SARIF_OPT,
        select: str | None = SELECT_OPT,
        ignore: str | None = IGNORE_OPT,
        reserve: str | None = RESERVE_OPT,
        fix: bool = FIX_OPT,
        fail_on: Level = FAIL_ON_OPT,
        textfile: Path | None = TEXTFILE_OPT,
    ) -> None:
        uris = connect or []
        if len(uris) > 1:
            code = run_fleet(
                uris,
                targets=targets,
                others={"--sysfs": sysfs, "--capabilities": capabilities, "--domains": domains,
                        "--domcapabilities": domcapabilities, "--sarif": as_sarif, "--fix": fix,
                        "--textfile": textfile},
                all_domains=all_domains,
                as_json=as_json,
                select=select,
                ignore=ignore,
                reserve=reserve,
                fail_on=fail_on,
            )  # fmt: skip
            if code:
                raise typer.Exit(code)
            return
        code = run_check(
            targets=targets,
            src=HostSource(sysfs=sysfs, capabilities=capabilities, connect=uris[0] if uris else None),
            domains=domains,
            domcaps=domcapabilities,
            all_domains=all_domains,
            as_json=as_json,
            as_sarif=as_sarif,
            select=select,
            ignore=ignore,
            reserve=reserve,
            fix=fix,
            fail_on=fail_on,
            textfile=textfile,
        )
        if code:
            raise typer.Exit(code)
