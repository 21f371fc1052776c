"""Where the host and the tenants come from (``--sysfs``/``--capabilities``/``--connect``, ``--domains``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vmtune.errors import InputError

if TYPE_CHECKING:
    from vmtune.core.guest import GuestSpec
    from vmtune.core.topology.model import Host

__all__ = ["HostSource", "load_host", "load_tenants"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSource:
    sysfs: Path | None = None
    capabilities: Path | None = None
    connect: str | None = None


def load_host(src: HostSource) -> Host:
    """Read the host topology from exactly one source; default: the live sysfs at /."""
    chosen = [name for name, val in (("--sysfs", src.sysfs), ("--capabilities", src.capabilities),
                                     ("--connect", src.connect)) if val is not None]  # fmt: skip
    if len(chosen) > 1:
        raise InputError(f"choose one host source, not {' and '.join(chosen)}")
    if src.capabilities is not None:
        from vmtune.adapters.files import read_text
        from vmtune.xmlmap.capabilities import parse_capabilities

        return parse_capabilities(read_text(src.capabilities), source=str(src.capabilities))
    if src.connect is not None:
        from vmtune.adapters.libvirt import open_host

        return open_host(src.connect)
    from vmtune.adapters.sysfs import read_sysfs

    root = src.sysfs or Path("/")
    if root.is_file():  # `vmtune host snapshot` output: extracted to a temp dir, named after the file
        from vmtune.adapters.snapshot import open_root

        with open_root(root) as extracted:
            return dataclasses.replace(read_sysfs(extracted), name=str(root))
    return read_sysfs(root)


def load_tenants(directory: Path, exclude_name: str | None = None) -> list[GuestSpec]:
    """Every domain XML (``*.xml``) in ``directory`` as a tenant of the host, except ``exclude_name``.

    A directory that is not there is an InputError naming ``--domains``; a bad tenant file is an
    InputError naming that file (a wrong tenant would silently give its CPUs away).
    """
    from vmtune.adapters.files import read_bytes
    from vmtune.xmlmap.guest import read_guest

    if not directory.is_dir():
        raise InputError(f"--domains {directory}: not a directory")
    tenants = []
    for path in sorted(directory.glob("*.xml")):
        guest = read_guest(read_bytes(path), source=str(path))
        if exclude_name is None or guest.name != exclude_name:
            tenants.append(guest)
    return tenants
