"""`vmtune plan` (decide, show the diff, write nothing) and `vmtune apply` (offline files)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from vmtune.cli.common import (
    CAPABILITIES_OPT,
    CONNECT_OPT,
    DOMAINS_OPT,
    DOMCAPS_OPT,
    JSON_OPT,
    SYSFS_OPT,
    HostSource,
)
from vmtune.cli.compat import App
from vmtune.cli.live_cmd import apply_connect, plan_live
from vmtune.cli.plan_run import plan, run
from vmtune.cli.tuning import Tuning, tuning_options
from vmtune.errors import InputError

__all__ = ["register"]

EXPLAIN_OPT: bool = typer.Option(False, "--explain", help="Print the reason for every decision (stdout).")
OUT_OPT: Path | None = typer.Option(
    None, "-o", "--output", help="Write here (a directory for many files).", metavar="OUT"
)
IN_PLACE_OPT: bool = typer.Option(False, "--in-place", help="Rewrite the input files atomically.")
BACKUP_OPT: bool = typer.Option(False, "--backup", help="With --in-place: keep the old file as FILE~.")
LIVE_FILES_ARG: list[Path] | None = typer.Argument(
    None, help="Domain XML files or directories (not with --domain).", metavar="[DOMAIN.xml...]"
)
LIVE_DOMAIN_OPT: str | None = typer.Option(
    None, "--domain", help="With --connect: tune this libvirt domain.", metavar="NAME"
)
LIVE_OPT: bool = typer.Option(False, "--live", help="With --domain: also re-pin the running guest now.")


def register(app: App) -> None:
    _register_plan(app)
    _register_apply(app)


def _register_plan(app: App) -> None:
    @app.command("plan")
    @tuning_options
    def plan_cmd(  # noqa: PLR0917 (typer maps each parameter to a CLI option)
        files: list[Path] | None = LIVE_FILES_ARG,
        domain: str | None = LIVE_DOMAIN_OPT,
        sysfs: Path | None = SYSFS_OPT,
        capabilities: Path | None = CAPABILITIES_OPT,
        connect: str | None = CONNECT_OPT,
        domcapabilities: Path | None = DOMCAPS_OPT,
        domains: Path | None = DOMAINS_OPT,
        json_out: bool = JSON_OPT,
        explain: bool = EXPLAIN_OPT,
        *,
        tuning: Tuning,
    ) -> None:
        """Decide pinning/NUMA/features for each domain and print the diff; write nothing."""
        if domain is not None:  # a libvirt domain: what `apply --domain` would define (vmtune.cli.live_cmd)
            offline = {"--sysfs": sysfs, "--capabilities": capabilities, "--domcapabilities": domcapabilities,
                       "--domains": domains, "--explain": explain}  # fmt: skip
            uri = _domain_only(domain, connect, files, offline)
            if code := plan_live(uri, domain, tuning, json_out=json_out):
                raise typer.Exit(code)
            return
        if not files:
            raise InputError("plan: give DOMAIN.xml files, or --connect URI --domain NAME")
        code = plan(
            files, sysfs=sysfs, capabilities=capabilities, connect=connect, domcapabilities=domcapabilities,
            domains=domains, json_out=json_out, explain=explain, tuning=tuning,
        )  # fmt: skip
        if code:
            raise typer.Exit(code)


def _register_apply(app: App) -> None:
    @app.command("apply")
    @tuning_options
    def apply_cmd(  # noqa: PLR0917 (typer maps each parameter to a CLI option)
        files: list[Path] | None = LIVE_FILES_ARG,
        domain: str | None = LIVE_DOMAIN_OPT,
        live: bool = LIVE_OPT,
        output: Path | None = OUT_OPT,
        in_place: bool = IN_PLACE_OPT,
        backup: bool = BACKUP_OPT,
        sysfs: Path | None = SYSFS_OPT,
        capabilities: Path | None = CAPABILITIES_OPT,
        connect: str | None = CONNECT_OPT,
        domcapabilities: Path | None = DOMCAPS_OPT,
        domains: Path | None = DOMAINS_OPT,
        json_out: bool = JSON_OPT,
        *,
        tuning: Tuning,
    ) -> None:
        """Plan each domain XML and write it: -o OUT, or --in-place [--backup]; atomic, validated."""
        if domain is not None or live:  # through libvirt: vmtune.cli.live_cmd
            code = apply_connect(
                files, connect=connect, domain=domain, live=live, tuning=tuning,
                offline_flags={"-o": output, "--in-place": in_place, "--sysfs": sysfs,
                               "--capabilities": capabilities, "--domains": domains},
                json_out=json_out,
            )  # fmt: skip
            if code:
                raise typer.Exit(code)
            return
        if not files:
            raise InputError("apply: give DOMAIN.xml files, or --connect URI --domain NAME")
        if json_out:
            raise InputError("apply: --json needs --connect URI --domain NAME")
        code = run(
            files, host=HostSource(sysfs=sysfs, capabilities=capabilities, connect=connect),
            domcaps=domcapabilities, domains=domains, tuning=tuning, write_to=output, in_place=in_place,
            backup=backup, apply=True,
        )  # fmt: skip
        if code:
            raise typer.Exit(code)


def _domain_only(
    domain: str, connect: str | None, files: list[Path] | None, offline: Mapping[str, object]
) -> str:
    """``plan --domain NAME`` reads the domain, host and tenants from ``--connect`` (the URI returned) and
    nothing else."""
    if connect is None:
        raise InputError(f"--domain {domain}: needs --connect URI (e.g. qemu:///system)")
    if files:
        raise InputError(f"--domain {domain}: give either DOMAIN.xml files or --domain, not both")
    if clash := [flag for flag, value in offline.items() if value not in (None, False)]:
        raise InputError(
            f"--domain {domain}: {', '.join(clash)} only apply to files, not to a libvirt domain"
        )
    return connect
