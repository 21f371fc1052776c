"""`vmtune host [HOST] [--domains DIR] [--json | --map]` and `vmtune host snapshot OUT.tar.gz`.

``host`` is a typer group whose callback is the default action (``invoke_without_command``), so both
``vmtune host --json`` and ``vmtune host snapshot OUT`` work; the callback does nothing when a subcommand
follows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vmtune.adapters.libvirt import connect, open_host
from vmtune.adapters.snapshot import open_root, write_snapshot
from vmtune.cli.common import CAPABILITIES_OPT, CONNECT_MANY_OPT, DOMAINS_OPT, JSON_OPT, SYSFS_OPT
from vmtune.cli.compat import App
from vmtune.cli.fleet import host_fleet
from vmtune.core.guest import GuestSpec
from vmtune.core.ledger.ownership import cpu_owners
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.render.host import emit_host
from vmtune.render.hostjson import dumps, host_json
from vmtune.render.hostmap import emit_map
from vmtune.service import HostSource, load_host, load_tenants

__all__ = ["register", "show_host"]

MAP_OPT: bool = typer.Option(False, "--map", help="Show a grid of every CPU coloured by owner.")
RESERVE_OPT: str | None = typer.Option(
    None, "--reserve", help="Host housekeeping CPUs never given to guests (shown in --map).", metavar="CPUSET"
)
OUT_ARG: Path = typer.Argument(..., help="Where to write the snapshot (.tar.gz).", metavar="OUT.tar.gz")


def register(app: App) -> None:
    host_app = App(
        name="host",
        help=(
            "Show the host topology: sockets > NUMA nodes > caches > cores, with memory and hugepages;"
            " --json for scripts, --map for who owns which CPU (tenants from --domains)."
            " 'vmtune host snapshot OUT.tar.gz' captures the topology for use elsewhere with --sysfs."
        ),
        subcommand_metavar="[snapshot OUT.tar.gz]",
        invoke_without_command=True,
        no_args_is_help=False,
    )

    @host_app.callback(invoke_without_command=True)
    def host_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
        ctx: typer.Context,
        sysfs: Path | None = SYSFS_OPT,
        capabilities: Path | None = CAPABILITIES_OPT,
        connect: list[str] | None = CONNECT_MANY_OPT,
        domains: Path | None = DOMAINS_OPT,
        as_json: bool = JSON_OPT,
        as_map: bool = MAP_OPT,
        reserve: str | None = RESERVE_OPT,
    ) -> None:
        """Show sockets > NUMA nodes > caches > cores with memory and hugepages (--json, --map)."""
        if ctx.invoked_subcommand is not None:
            return
        if as_json and as_map:
            raise InputError("--json and --map: choose one")
        uris = connect or []
        if len(uris) > 1:  # fleet mode: one summary row per host (vmtune.cli.fleet)
            others = {"--sysfs": sysfs, "--capabilities": capabilities, "--domains": domains,
                      "--map": as_map, "--reserve": reserve}  # fmt: skip
            if code := host_fleet(uris, as_json=as_json, others=others):
                raise typer.Exit(code)
            return
        show_host(
            HostSource(sysfs=sysfs, capabilities=capabilities, connect=uris[0] if uris else None),
            domains=domains, as_json=as_json, as_map=as_map, reserve=reserve,
        )  # fmt: skip

    @host_app.command("snapshot")
    def snapshot_cmd(
        out: Path = OUT_ARG,
        sysfs: Path | None = SYSFS_OPT,
    ) -> None:
        """Capture this host's topology files (/sys, /proc) for offline use with --sysfs."""
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
    reserved = CpuSet.parse(reserve, what="--reserve") if reserve else CpuSet()
    tenants: list[GuestSpec] | None
    if src.connect is not None and domains is None and (as_json or as_map):
        # with --connect, the connection's defined domains are the tenants (one connection)
        with connect(src.connect, readonly=True) as conn:
            host, tenants = conn.host(), list(conn.tenants())
    else:
        host = load_host(src, libvirt=open_host)
        tenants = load_tenants(domains) if domains is not None else None
    for warning in host.warnings:
        print(f"vmtune: warning: {warning}", file=sys.stderr)
    if as_json:
        owners = None
        if tenants is not None:
            owners = cpu_owners(host, tenants, reserved)
        sys.stdout.write(dumps(host_json(host, owners=owners)))
        return
    if as_map:
        emit_map(sys.stdout, host, tenants or [], reserved)
        return
    emit_host(sys.stdout, host)
