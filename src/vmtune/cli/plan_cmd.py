"""`vmtune plan` (decide, show the diff, write nothing) and `vmtune apply` (offline files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vmtune.cli.common import CapabilitiesOpt, ConnectOpt, DomainsOpt, HostSource, JsonOpt, SysfsOpt
from vmtune.cli.live_cmd import apply_connect
from vmtune.cli.plan_run import plan, run
from vmtune.cli.tuning import DomcapsOpt, Tuning, tuning_options
from vmtune.errors import InputError

__all__ = ["register"]

FilesArg = Annotated[
    list[Path], typer.Argument(help="Domain XML files or directories of them.", metavar="DOMAIN.xml...")
]
ExplainOpt = Annotated[bool, typer.Option("--explain", help="Print the reason for every decision (stdout).")]
OutOpt = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="Write here (a directory for many files).", metavar="OUT"),
]
InPlaceOpt = Annotated[bool, typer.Option("--in-place", help="Rewrite the input files atomically.")]
BackupOpt = Annotated[bool, typer.Option("--backup", help="With --in-place: keep the old file as FILE~.")]
LiveFilesArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Domain XML files or directories (not with --domain).", metavar="[DOMAIN.xml...]"),
]
LiveDomainOpt = Annotated[
    str | None, typer.Option("--domain", help="With --connect: tune this libvirt domain.", metavar="NAME")
]
LiveOpt = Annotated[bool, typer.Option("--live", help="With --domain: also re-pin the running guest now.")]


def register(app: typer.Typer) -> None:
    _register_plan(app)
    _register_apply(app)


def _register_plan(app: typer.Typer) -> None:
    @app.command("plan")
    @tuning_options
    def plan_cmd(  # noqa: PLR0917 (typer maps each parameter to a CLI option)
        files: FilesArg,
        sysfs: SysfsOpt = None,
        capabilities: CapabilitiesOpt = None,
        connect: ConnectOpt = None,
        domcapabilities: DomcapsOpt = None,
        domains: DomainsOpt = None,
        json_out: JsonOpt = False,
        explain: ExplainOpt = False,
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


def _register_apply(app: typer.Typer) -> None:
    @app.command("apply")
    @tuning_options
    def apply_cmd(  # noqa: PLR0917 (typer maps each parameter to a CLI option)
        files: LiveFilesArg = None,
        domain: LiveDomainOpt = None,
        live: LiveOpt = False,
        output: OutOpt = None,
        in_place: InPlaceOpt = False,
        backup: BackupOpt = False,
        sysfs: SysfsOpt = None,
        capabilities: CapabilitiesOpt = None,
        connect: ConnectOpt = None,
        domcapabilities: DomcapsOpt = None,
        domains: DomainsOpt = None,
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
