"""`vmtune plan` (decide, show the diff, write nothing) and `vmtune apply` (offline files)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from vmtune.cli.common import CapabilitiesOpt, ConnectOpt, DomainsOpt, HostSource, JsonOpt, SysfsOpt
from vmtune.cli.live_cmd import apply_connect, plan_live
from vmtune.cli.plan_run import plan, run
from vmtune.cli.tuning import DomcapsOpt, Tuning, tuning_options
from vmtune.errors import InputError

__all__ = ["register"]

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
        files: LiveFilesArg = None,
        domain: LiveDomainOpt = None,
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
        json_out: JsonOpt = False,
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
