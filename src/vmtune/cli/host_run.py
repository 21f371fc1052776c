"""The body of `vmtune host` (tree, --json, --map): gather host + tenants, show them. No typer here.

host_cmd's typer callback and the typer-free start-up path (``cli.plan_fast``) both call ``host``; fleet
mode (several ``--connect``) and ``host snapshot`` stay in host_cmd.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vmtune.cli.sources import HostSource, load_host, load_tenants
from vmtune.errors import InputError

if TYPE_CHECKING:
    from vmtune.core.guest import GuestSpec

__all__ = ["host", "one_view", "show_host"]


def host(
    *,
    sysfs: Path | None,
    capabilities: Path | None,
    connect: str | None,
    domains: Path | None,
    as_json: bool,
    as_map: bool,
    reserve: str | None,
) -> None:
    """`vmtune host` with its options parsed (by typer or by cli.plan_fast), one host source."""
    one_view(as_json=as_json, as_map=as_map)
    show_host(
        HostSource(sysfs=sysfs, capabilities=capabilities, connect=connect),
        domains=domains,
        as_json=as_json,
        as_map=as_map,
        reserve=reserve,
    )


def one_view(*, as_json: bool, as_map: bool) -> None:
    """Checked first, before fleet mode looks at the other flags."""
    if as_json and as_map:
        raise InputError("--json and --map: choose one")


def show_host(
    src: HostSource, *, domains: Path | None, as_json: bool, as_map: bool, reserve: str | None
) -> None:
    # Each view imports only what it draws with: rich only for a terminal (render.hosttext), and the CPU
    # owners (vmtune.core.ledger.ownership and the guest model under it, ~40 ms) only when shown.
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

        owners = None
        if tenants is not None:
            from vmtune.core.ledger.ownership import cpu_owners

            owners = cpu_owners(host, tenants, reserved)
        sys.stdout.write(dumps(host_json(host, owners=owners)))
        return
    if as_map:
        from vmtune.render.hostmap import emit_map

        emit_map(sys.stdout, host, tenants or [], reserved)
        return
    from vmtune.render.host import emit_host

    emit_host(sys.stdout, host)
