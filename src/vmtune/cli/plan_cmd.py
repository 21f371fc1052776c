"""`vmtune plan` (decide, show the diff, write nothing) and `vmtune apply` (offline files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vmtune.cli.common import CapabilitiesOpt, ConnectOpt, DomainsOpt, HostSource, JsonOpt, SysfsOpt
from vmtune.cli.tuning import DomcapsOpt, Tuning, tuning_options

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
        # keep in step with cli.plan_fast, which parses plain `vmtune plan` argvs without typer
        # (tests/test_cli_fast.py compares its option table with this signature)
        from vmtune.cli.plan_run import plan

        code = plan(
            files, sysfs=sysfs, capabilities=capabilities, connect=connect, domcapabilities=domcapabilities,
            domains=domains, json_out=json_out, explain=explain, tuning=tuning,
        )  # fmt: skip
        if code:
            raise typer.Exit(code)

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
        from vmtune.cli.plan_run import run

        if domain is not None or live:  # through libvirt (issue 6): vmtune.cli.live_cmd
            from vmtune.cli.live_cmd import apply_connect

            code = apply_connect(
                files, connect=connect, domain=domain, live=live, tuning=tuning,
                offline_flags={"-o": output, "--in-place": in_place, "--sysfs": sysfs,
                               "--capabilities": capabilities, "--domains": domains},
            )  # fmt: skip
            if code:
                raise typer.Exit(code)
            return
        if not files:
            from vmtune.errors import InputError

            raise InputError("apply: give DOMAIN.xml files, or --connect URI --domain NAME")
        code = run(
            files, host=HostSource(sysfs=sysfs, capabilities=capabilities, connect=connect),
            domcaps=domcapabilities, domains=domains, tuning=tuning, write_to=output, in_place=in_place,
            backup=backup, apply=True,
        )  # fmt: skip
        if code:
            raise typer.Exit(code)
