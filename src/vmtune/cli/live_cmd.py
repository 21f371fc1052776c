"""`vmtune verify` and `vmtune hook` (run by libvirt, or `hook install`); the `apply --connect` helper."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import typer

from vmtune.adapters.files import atomic_write
from vmtune.adapters.hookenv import HookPaths
from vmtune.adapters.isojournal import holder_of
from vmtune.adapters.isoverify import HostIsolation, host_isolation
from vmtune.adapters.libvirt import connect, is_local, qemu_pid, read_domcaps, running_guests
from vmtune.adapters.probes import probe_host_caps
from vmtune.adapters.procfs import read_process
from vmtune.cli.common import CONNECT_OPT, JSON_OPT
from vmtune.cli.compat import App
from vmtune.cli.textfile import TEXTFILE_OPT, write_verify_textfile
from vmtune.cli.tuning import Tuning
from vmtune.core.guest import GuestSpec
from vmtune.core.verify.compare import Report, compare, expectation_from_guest
from vmtune.core.verify.readback import owned_mismatches
from vmtune.errors import ExitCode, InputError, LibvirtError
from vmtune.hook import recover, run_hook
from vmtune.render.plan import plan_json
from vmtune.render.verify import verify_json, verify_text
from vmtune.service import Applied, apply_domain, plan_domain
from vmtune.xmlmap.domcaps import parse_domcapabilities
from vmtune.xmlmap.guest import read_guest

__all__ = [
    "HOOK_NAME",
    "apply_connect",
    "apply_live",
    "hook_script",
    "install_hook",
    "plan_live",
    "register",
]

HOOK_NAME = "vmtune"
DOMAIN_OPT: str | None = typer.Option(None, "--domain", "-d", help="Domain name.", metavar="NAME")
PROC_OPT: Path = typer.Option(
    Path("/proc"), "--proc", help="procfs root to read threads from (tests).", metavar="DIR", hidden=True
)
RUN_DIR_OPT: Path = typer.Option(
    Path("/run/libvirt/qemu"), "--run-dir", help="Where libvirt keeps <name>.pid (tests).", metavar="DIR",
    hidden=True,
)  # fmt: skip
HOOK_ARGS: list[str] | None = typer.Argument(
    None, help="GUEST OP SUBOP EXTRA as libvirt passes them, or `install`.", metavar="ARGS..."
)
DIR_OPT: Path = typer.Option(
    Path("/etc/libvirt/hooks"), "--dir", help="libvirt's hooks directory (install puts qemu.d/vmtune in it).",
    metavar="DIR",
)  # fmt: skip


def apply_live(uri: str, domain: str, tuning: Tuning, *, live: bool, json_out: bool = False) -> int:
    """`apply --connect URI --domain NAME [--live] [--json]`: diff or JSON on stdout, the rest on stderr."""
    with connect(uri) as conn:
        result = apply_domain(conn, domain, tuning.intent, live=live)
        problem = conn.domcaps_problem
    if json_out:
        sys.stdout.write(_live_json(uri, result))
    else:
        sys.stdout.write(result.diff)
    err = sys.stderr
    if problem is not None:
        print(f"vmtune: warning: domcapabilities of {uri} not readable ({problem})", file=err)
    for note in result.plan.notes:
        print(f"vmtune: {note.level.value}: {note.topic}: {note.message}", file=err)
    print(f"vmtune: {'defined' if result.defined else 'unchanged'}: domain '{domain}' on {uri}", file=err)
    if live and not result.running:
        print(
            f"vmtune: note: --live: '{domain}' is not running; the new definition applies when it starts",
            file=err,
        )
    for change in result.live_now:
        print(f"vmtune: live now: {change}", file=err)
    if waiting := _waiting(result.needs_restart):
        print(f"vmtune: needs a guest restart to take effect: {', '.join(waiting)}", file=err)
    return int(ExitCode.OK)


def plan_live(uri: str, domain: str, tuning: Tuning, *, json_out: bool) -> int:
    """`plan --connect URI --domain NAME`: what `apply` would define, next to the same tenants; defines
    nothing. ``needs_restart`` is predicted against the running guest."""
    with connect(uri) as conn:
        planned = plan_domain(conn, domain, tuning.intent)
        running = conn.is_running(domain)
        live_guest = read_guest(conn.domain_xml(domain, inactive=False), source=planned.source)
    result = Applied(
        domain=domain, plan=planned.plan, diff=planned.diff(), defined=False, running=running,
        needs_restart=owned_mismatches(planned.plan, live_guest) if running else (),
        before=planned.before.decode("utf-8"), after=planned.after.decode("utf-8"),
    )  # fmt: skip
    sys.stdout.write(_live_json(uri, result, changed=planned.changed) if json_out else result.diff)
    for note in planned.plan.notes:
        print(f"vmtune: {note.level.value}: {note.topic}: {note.message}", file=sys.stderr)
    return int(ExitCode.OK)


def _waiting(needs_restart: tuple[str, ...]) -> list[str]:
    """Owned sections the running guest lacks; the stored intent only matters to the next plan/hook run."""
    return [s.split(" (wanted")[0] for s in needs_restart if not s.startswith("metadata/")]


def _live_json(uri: str, result: Applied, *, changed: bool | None = None) -> str:
    """One domain's plan or apply as JSON: the plan (``plan --json``'s form), the inactive definition
    before and after, and what the running guest got now or still waits for."""
    doc = plan_json(result.plan, source=f"libvirt:{result.domain}",
                    changed=result.defined if changed is None else changed)  # fmt: skip
    doc |= {
        "uri": uri,
        "domain": result.domain,
        "defined": result.defined,
        "running": result.running,
        "live_applied": list(result.live_now),
        "needs_restart": _waiting(result.needs_restart),
        "before": result.before,
        "after": result.after,
    }
    return json.dumps(doc, indent=2) + "\n"


def hook_script(python: str) -> str:
    return (
        "#!/bin/sh\n"
        "# Installed by `vmtune hook install`. libvirt runs it as: vmtune GUEST OP SUBOP EXTRA < DOMAIN.xml\n"
        "# (it never connects back to libvirtd; see `vmtune hook --help`)\n"
        f"exec '{python}' -m vmtune.hook \"$@\"\n"
    )


def install_hook(hooks_dir: Path, *, python: str | None = None) -> tuple[Path, bool]:
    """Write ``hooks_dir/qemu.d/vmtune`` (0755); returns (path, changed). Idempotent."""
    if "'" in (python := python or sys.executable):
        raise InputError(f"python path {python!r} contains a quote; cannot write the hook script")
    target = hooks_dir / "qemu.d" / HOOK_NAME
    body = hook_script(python).encode()
    try:
        if target.read_bytes() == body and target.stat().st_mode & 0o777 == 0o755:
            return target, False
    except OSError:
        pass
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--dir {hooks_dir}: cannot create {target.parent}: {err.strerror or err}") from None
    atomic_write(target, body, mode=0o755)
    return target, True


def _verify(
    uri: str, domain: str | None, json_out: bool, proc: Path, run_dir: Path, *, textfile: Path | None
) -> int:
    if not is_local(uri):
        raise InputError(f"--connect {uri}: verify reads this host's /proc; run it on the guest's host")
    reports, seen = [], []
    guests = running_guests(uri, domain)
    iso = host_isolation(HookPaths.from_env(os.environ), guests if domain is None else running_guests(uri))
    for guest in guests:
        pid = qemu_pid(guest.name, run_dir=run_dir)
        if pid is None:
            raise InputError(f"{run_dir}/{guest.name}.pid: no QEMU pid for running domain '{guest.name}'")
        seen.append(read_process(guest.name, pid, proc=proc))
        reports.append(_with_isolation(compare(expectation_from_guest(guest), seen[-1]), guest, iso))
    sys.stdout.write(verify_json(reports) if json_out else verify_text(reports))
    write_verify_textfile(textfile, uri, reports, seen)
    if not reports:
        print(f"vmtune: no running domains on {uri}", file=sys.stderr)
    if iso.leftover:
        print(f"vmtune: host isolation: {iso.leftover} file(s) still confined, no isolating guest runs; "
              "`vmtune hook recover` restores them", file=sys.stderr)  # fmt: skip
    ok = all(r.ok for r in reports) and not iso.leftover
    return int(ExitCode.OK if ok else ExitCode.FINDINGS)


def _with_isolation(report: Report, guest: GuestSpec, iso: HostIsolation) -> Report:
    """The guest's report with the host files its ``--isolate-host`` asks for (the PIT thread's row is the
    report's own, ``core.verify.sched``)."""
    holder = holder_of(guest)
    rows, drifts = list(report.rows), list(report.drifts)
    if holder is not None:
        rows += iso.rows
        drifts += iso.drifts
    return dataclasses.replace(report, rows=tuple(rows), drifts=tuple(drifts))


def register(app: App) -> None:
    @app.command("verify")
    def verify_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
        connect: str | None = CONNECT_OPT,
        domain: str | None = DOMAIN_OPT,
        json_out: bool = JSON_OPT,
        proc: Path = PROC_OPT,
        run_dir: Path = RUN_DIR_OPT,
        textfile: Path | None = TEXTFILE_OPT,
    ) -> None:
        """What running guests really do (thread affinity, scheduler, memory per node) vs. their XML.

        Exit 5 when anything drifted.
        """
        if connect is None:
            raise InputError("verify needs --connect URI (e.g. qemu:///system)")
        code = _verify(connect, domain, json_out, proc, run_dir, textfile=textfile)
        if code:
            raise typer.Exit(code)

    @app.command("hook", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
    def hook_cmd(
        ctx: typer.Context,
        args: list[str] | None = HOOK_ARGS,
        hooks_dir: Path = DIR_OPT,
        connect: str | None = CONNECT_OPT,
    ) -> None:
        """libvirt hook: `vmtune hook GUEST OP SUBOP EXTRA < XML`; `vmtune hook install [--dir DIR]`;
        `vmtune hook recover`.

        `install` writes DIR/qemu.d/vmtune (mode 0755; libvirtd looks for hooks only when it starts).
        With --connect it also saves the host's domcapabilities for the hook, which must never call libvirt.
        `recover` finishes what a killed hook run left halfway (host isolation restored or re-applied for
        the guests that run), as the next hook run would.
        """
        argv = list(args or [])
        if argv == ["recover"]:
            print(recover(HookPaths.from_env(os.environ)), file=sys.stderr)
            return
        install = _install_args(argv)
        if install is not None and "--help" in install:
            print(ctx.get_help())
            return
        if install is not None:
            hooks_dir = Path(install["--dir"]) if "--dir" in install else hooks_dir
            _install(hooks_dir, install.get("--connect", connect))
            return

        code = run_hook(argv, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
        if code:
            raise typer.Exit(code)


def _install_args(argv: list[str]) -> dict[str, str] | None:
    """``install [--dir DIR] [--connect URI]`` -> its options; None when argv is a libvirt invocation.

    The hook command keeps libvirt's argv verbatim (``allow_interspersed_args=False``: EXTRA may be
    anything), so options after ``install`` arrive here unparsed. A guest named ``install`` still works:
    libvirt always passes OP and SUBOP, which are not options.
    """
    if not argv or argv[0] != "install":
        return None
    opts: dict[str, str] = {}
    rest = argv[1:]
    while rest:
        key, _, value = rest.pop(0).partition("=")
        if key in ("-h", "--help"):
            return {"--help": ""}
        if key in ("--dir", "--connect", "-c"):
            if not value:
                if not rest:
                    raise InputError(f"hook install: {key} needs a value")
                value = rest.pop(0)
            opts["--connect" if key == "-c" else key] = value
        elif key.startswith("-"):
            raise InputError(f"hook install: unknown option {key} (use --dir DIR, --connect URI)")
        else:
            return None  # `install OP SUBOP EXTRA`: a guest named install
    return opts


def _install(hooks_dir: Path, uri: str | None) -> None:
    """`hook install`: check everything first (libvirt answers, its domcapabilities can be read, both
    target folders can be written), then write the hook and the saved domcapabilities, so a failure leaves
    nothing behind."""
    xml: str | None = None
    cache = HookPaths().domcaps
    if uri is not None:
        xml, how = read_domcaps(uri)
        if xml is None:
            raise LibvirtError(
                f"hook install --connect {uri}: cannot read domcapabilities ({how}); nothing written. Run it "
                "as root (libvirt gives domcapabilities only to read-write connections), or without --connect"
            )
        parse_domcapabilities(xml, source=f"{uri} domcapabilities")
        assert cache is not None
        _check_writable(cache.parent, what="the domcapabilities cache")
    _check_writable(hooks_dir / "qemu.d", what=f"--dir {hooks_dir}")
    path, changed = install_hook(hooks_dir)
    print(path)
    if uri is not None and xml is not None and cache is not None:
        _save_domcaps(uri, xml, cache)
    if changed:
        print("vmtune: restart libvirtd: it looks for hook scripts only when it starts", file=sys.stderr)


def _check_writable(directory: Path, *, what: str) -> None:
    """``directory`` exists and is writable, or its nearest existing ancestor is (it will be created)."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(
            f"{what}: cannot write {directory} ({probe} is not a writable folder); nothing written"
        )


def _save_domcaps(uri: str, xml: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, xml.encode(), mode=0o644)
    print(f"vmtune: saved domcapabilities of {uri} to {target}", file=sys.stderr)
    if is_local(uri):
        probe_host_caps(Path("/"), emulator=parse_domcapabilities(xml, source=uri).emulator)


def apply_connect(
    files: list[Path] | None,
    *,
    connect: str | None,
    domain: str | None,
    live: bool,
    tuning: Tuning,
    offline_flags: dict[str, object],
    json_out: bool = False,
) -> int:
    """The `apply --connect URI --domain NAME [--live]` branch of `vmtune apply` (plan_cmd.py calls it)."""
    if domain is None:
        raise InputError("--live needs --connect URI --domain NAME")
    if connect is None:
        raise InputError(f"--domain {domain}: needs --connect URI (e.g. qemu:///system)")
    if files:
        raise InputError(f"--domain {domain}: give either DOMAIN.xml files or --domain, not both")
    clash = [flag for flag, value in offline_flags.items() if value not in (None, False)]
    if clash:
        raise InputError(
            f"--domain {domain}: {', '.join(clash)} only apply to files, not to a libvirt domain"
        )
    return apply_live(connect, domain, tuning, live=live, json_out=json_out)
