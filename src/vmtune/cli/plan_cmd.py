"""`vmtune plan` (decide, show the diff, write nothing) and `vmtune apply` (offline files)."""

from __future__ import annotations

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
from vmtune.cli.live_cmd import apply_connect
from vmtune.cli.plan_run import plan, run
from vmtune.cli.tuning import Tuning, tuning_options
from vmtune.errors import InputError

__all__ = ["register"]

FILES_ARG: list[Path] = typer.Argument(
    ..., help="Domain XML files or directories of them.", metavar="DOMAIN.xml..."
)
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
        files: list[Path] = FILES_ARG,
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
        *,
        tuning: Tuning,
    ) -> None:
        """Plan each domain XML and write it: -o OUT, or --in-place [--backup]; atomic, validated."""
        if domain is not None or live:  # through libvirt: vmtune.cli.live_cmd
            code = apply_connect(
                files, connect=connect, domain=domain, live=live, tuning=tuning,
                offline_flags={"-o": output, "--in-place": in_place, "--sysfs": sysfs,
                               "--capabilities": capabilities, "--domains": domains},
            )  # fmt: skip
            if code:
                raise typer.Exit(code)
            return
        if not files:
            raise InputError("apply: give DOMAIN.xml files, or --connect URI --domain NAME")
        code = run(
            files, host=HostSource(sysfs=sysfs, capabilities=capabilities, connect=connect),
            domcaps=domcapabilities, domains=domains, tuning=tuning, write_to=output, in_place=in_place,
            backup=backup, apply=True,
        )  # fmt: skip
        if code:
            raise typer.Exit(code)
