"""`vmtune host [HOST] [--domains DIR] [--json | --map]` and `vmtune host snapshot OUT.tar.gz`.

``host`` is a typer group whose callback is the default action (``invoke_without_command``), so both
``vmtune host --json`` and ``vmtune host snapshot OUT`` work; the callback does nothing when a subcommand
follows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vmtune.cli.common import (
    CapabilitiesOpt,
    ConnectManyOpt,
    DomainsOpt,
    HostSource,
    JsonOpt,
    SysfsOpt,
    load_host,
    load_tenants,
)
from vmtune.errors import InputError

if TYPE_CHECKING:
    from vmtune.core.guest import GuestSpec

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
        if as_json and as_map:
            raise InputError("--json and --map: choose one")
        uris = connect or []
        if len(uris) > 1:  # fleet mode: one summary row per host (vmtune.cli.fleet)
            from vmtune.cli.fleet import host_fleet

            others = {"--sysfs": sysfs, "--capabilities": capabilities, "--domains": domains,
                      "--map": as_map, "--reserve": reserve}  # fmt: skip
            if code := host_fleet(uris, as_json=as_json, others=others):
                raise typer.Exit(code)
            return
        show_host(
            HostSource(sysfs=sysfs, capabilities=capabilities, connect=uris[0] if uris else None),
            domains=domains,
            as_json=as_json,
            as_map=as_map,
            reserve=reserve,
        )

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


def show_host(
    src: HostSource, *, domains: Path | None, as_json: bool, as_map: bool, reserve: str | None
) -> None:
    # rich is imported only for the views that draw; --json stays on the fast path.
    from vmtune.core.ownership import cpu_owners
    from vmtune.cpuset import CpuSet

    reserved = CpuSet.parse(reserve, what="--reserve") if reserve else CpuSet()
    tenants: list[GuestSpec] | None
    if src.connect is not None and domains is None and (as_json or as_map):
        # DESIGN: with --connect, the connection's defined domains are the tenants (one connection)
        from vmtune.adapters.libvirt import connect

        with connect(src.connect, readonly=True) as conn:
            host, tenants = conn.host(), list(conn.tenants())
    else:
        host = load_host(src)
        tenants = load_tenants(domains) if domains is not None else None
    for warning in host.warnings:
        print(f"vmtune: warning: {warning}", file=sys.stderr)
    if as_json:
        from vmtune.render.hostjson import dumps, host_json

        owners = cpu_owners(host, tenants, reserved) if tenants is not None else None
        sys.stdout.write(dumps(host_json(host, owners=owners)))
        return
    from vmtune.render.console import make_console

    console = make_console()
    if as_map:
        from vmtune.render.hostmap import print_map

        print_map(console, host, tenants or [], reserved)
        return
    from vmtune.render.host import print_host

    print_host(console, host)
