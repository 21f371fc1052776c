"""`vmtune host [HOST] [--domains DIR] [--json | --map]` and `vmtune host snapshot OUT.tar.gz`.

``host`` is a typer group whose callback is the default action (``invoke_without_command``), so both
``vmtune host --json`` and ``vmtune host snapshot OUT`` work; the callback does nothing when a subcommand
follows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vmtune.cli.common import CapabilitiesOpt, ConnectManyOpt, DomainsOpt, JsonOpt, SysfsOpt
from vmtune.errors import InputError

__all__ = ["register"]

MapOpt = Annotated[bool, typer.Option("--map", help="Show a grid of every CPU coloured by owner.")]
ReserveOpt = Annotated[
    str | None,
    typer.Option("--reserve", help="Host housekeeping CPUs never given to guests (shown in --map).",
                 metavar="CPUSET"),
]  # fmt: skip


def register(app: typer.Typer) -> None:
    host_app = typer.Typer(
        name="host",
        help=(
            "Show the host topology: sockets > NUMA nodes > caches > cores, with memory and hugepages;"
            " --json for scripts, --map for who owns which CPU (tenants from --domains)."
            " 'vmtune host snapshot OUT.tar.gz' captures the topology for use elsewhere with --sysfs."
        ),
        subcommand_metavar="[snapshot OUT.tar.gz]",
        invoke_without_command=True,
        no_args_is_help=False,
        add_completion=False,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )

    @host_app.callback(invoke_without_command=True)
    def host_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
        ctx: typer.Context,
        sysfs: SysfsOpt = None,
        capabilities: CapabilitiesOpt = None,
        connect: ConnectManyOpt = None,
        domains: DomainsOpt = None,
        as_json: JsonOpt = False,
        as_map: MapOpt = False,
        reserve: ReserveOpt = None,
    ) -> None:
        """Show sockets > NUMA nodes > caches > cores with memory and hugepages (--json, --map)."""
        if ctx.invoked_subcommand is not None:
            return
        from vmtune.cli.host_run import host, one_view

        one_view(as_json=as_json, as_map=as_map)
        uris = connect or []
        if len(uris) > 1:  # fleet mode: one summary row per host (vmtune.cli.fleet)
            from vmtune.cli.fleet import host_fleet

            others = {"--sysfs": sysfs, "--capabilities": capabilities, "--domains": domains,
                      "--map": as_map, "--reserve": reserve}  # fmt: skip
            if code := host_fleet(uris, as_json=as_json, others=others):
                raise typer.Exit(code)
            return
        # keep in step with cli.plan_fast.HOST, which parses plain `vmtune host` argvs without typer
        # (tests/test_cli_fast.py compares its option table with this signature)

        host(
            sysfs=sysfs, capabilities=capabilities, connect=uris[0] if uris else None, domains=domains,
            as_json=as_json, as_map=as_map, reserve=reserve,
        )  # fmt: skip

    @host_app.command("snapshot")
    def snapshot_cmd(
        out: Annotated[
            Path, typer.Argument(help="Where to write the snapshot (.tar.gz).", metavar="OUT.tar.gz")
        ],
        sysfs: SysfsOpt = None,
    ) -> None:
        """Capture this host's topology files (/sys, /proc) for offline use with --sysfs."""
        from vmtune.adapters.snapshot import open_root, write_snapshot

        root = sysfs or Path("/")
        if not root.exists():
            raise InputError(f"{root}: no such directory (expected a sysfs root such as /)")
        with open_root(root) as real_root:
            stats = write_snapshot(real_root, out)
        skipped = f", {stats.skipped} unreadable skipped" if stats.skipped else ""
        print(f"vmtune: wrote {out}: {stats.files} files, {stats.links} links{skipped}", file=sys.stderr)

    app.add_typer(host_app)
