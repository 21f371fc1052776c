"""Options shared by several commands (HOST selection, tenants); ``vmtune.service`` loads what they name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vmtune.service import HostSource

__all__ = [
    "CapabilitiesOpt",
    "ConnectManyOpt",
    "ConnectOpt",
    "DomainsOpt",
    "HostSource",
    "JsonOpt",
    "SysfsOpt",
]

SysfsOpt = Annotated[
    Path | None, typer.Option("--sysfs", help="Read topology from a sysfs root (default: /).", metavar="ROOT")
]
CapabilitiesOpt = Annotated[
    Path | None,
    typer.Option("--capabilities", help="Read topology from `virsh capabilities` XML.", metavar="FILE"),
]
ConnectOpt = Annotated[
    str | None, typer.Option("--connect", "-c", help="libvirt URI, e.g. qemu:///system.", metavar="URI")
]
ConnectManyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--connect",
        "-c",
        help="libvirt URI, e.g. qemu:///system or qemu+ssh://host/system; repeat it to cover several hosts "
        "in parallel (one summary row per host).",
        metavar="URI",
    ),
]
DomcapsOpt = Annotated[
    Path | None,
    typer.Option(
        "--domcapabilities", help="`virsh domcapabilities` XML: what QEMU/KVM provide.", metavar="FILE"
    ),
]
DomainsOpt = Annotated[
    Path | None,
    typer.Option(
        "--domains", help="Directory of domain XMLs: the other tenants of this host.", metavar="DIR"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
