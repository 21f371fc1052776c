"""Options shared by several commands (HOST selection, tenants); ``vmtune.service`` loads what they name.

Each is a parameter default (``sysfs: Path | None = SYSFS_OPT``), the declaration style every typer release
reads (``vmtune.cli.compat``); typer copies it per command, so one object serves them all.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vmtune.service import HostSource

__all__ = [
    "CAPABILITIES_OPT",
    "CONNECT_MANY_OPT",
    "CONNECT_OPT",
    "DOMAINS_OPT",
    "DOMCAPS_OPT",
    "JSON_OPT",
    "SYSFS_OPT",
    "HostSource",
]

SYSFS_OPT: Path | None = typer.Option(
    None, "--sysfs", help="Read topology from a sysfs root (default: /).", metavar="ROOT"
)
CAPABILITIES_OPT: Path | None = typer.Option(
    None, "--capabilities", help="Read topology from `virsh capabilities` XML.", metavar="FILE"
)
CONNECT_OPT: str | None = typer.Option(
    None, "--connect", "-c", help="libvirt URI, e.g. qemu:///system.", metavar="URI"
)
CONNECT_MANY_OPT: list[str] | None = typer.Option(
    None,
    "--connect",
    "-c",
    help="libvirt URI, e.g. qemu:///system or qemu+ssh://host/system; repeat it to cover several hosts "
    "in parallel (one summary row per host).",
    metavar="URI",
)
DOMCAPS_OPT: Path | None = typer.Option(
    None, "--domcapabilities", help="`virsh domcapabilities` XML: what QEMU/KVM provide.", metavar="FILE"
)
DOMAINS_OPT: Path | None = typer.Option(
    None, "--domains", help="Directory of domain XMLs: the other tenants of this host.", metavar="DIR"
)
JSON_OPT: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")
