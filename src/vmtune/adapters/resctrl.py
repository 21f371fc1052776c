"""Read ``/sys/fs/resctrl`` (under a root, so tests and extracted snapshots work like the live host).

``info/<RESOURCE>/{cbm_mask,min_cbm_bits,num_closids,shareable_bits}`` for the cache resources, the
default group's ``schemata`` at the top, and each control group's ``<dir>/schemata`` (directories with
no ``schemata``, like ``mon_groups``, are monitoring only). Not mounted (no ``info``), or a kernel that
shows no cache resource: None. A file that can't be parsed leaves out what it describes instead of
failing the plan; the planner then says why there is no cache allocation.
"""

from __future__ import annotations

from pathlib import Path

from vmtune.core.topology.resctrl import Resctrl, ResctrlGroup, ResctrlResource, resource_type

__all__ = ["RESCTRL", "parse_schemata", "read_resctrl"]

RESCTRL = Path("sys/fs/resctrl")
"""Where the kernel mounts it, relative to the root."""
INFO_FILES = ("cbm_mask", "min_cbm_bits", "num_closids", "shareable_bits")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _number(path: Path, base: int) -> int | None:
    text = _read(path)
    try:
        return None if text is None else int(text, base)
    except ValueError:
        return None


def parse_schemata(text: str) -> tuple[tuple[str, int, int], ...]:
    """(resource, cache id, mask) of every cache line (``L3:0=7ff;1=7ff``); ``MB:`` lines and anything
    unreadable are skipped."""
    out: list[tuple[str, int, int]] = []
    for line in text.splitlines():
        name, sep, entries = line.strip().partition(":")
        if not sep or resource_type(name.strip()) is None:
            continue
        for entry in entries.split(";"):
            cache_id, eq, mask = entry.strip().partition("=")
            try:
                if eq:
                    out.append((name.strip(), int(cache_id), int(mask, 16)))
            except ValueError:
                continue
    return tuple(out)


def _resource(directory: Path) -> ResctrlResource | None:
    if resource_type(directory.name) is None:
        return None
    mask = _number(directory / "cbm_mask", 16)
    if not mask:
        return None
    return ResctrlResource(
        name=directory.name,
        cbm_mask=mask,
        min_cbm_bits=_number(directory / "min_cbm_bits", 10) or 1,
        num_closids=_number(directory / "num_closids", 10) or 1,
        shareable_bits=_number(directory / "shareable_bits", 16) or 0,
    )


def read_resctrl(root: Path = Path("/")) -> Resctrl | None:
    base = root / RESCTRL
    try:
        infos = sorted(p for p in (base / "info").iterdir() if p.is_dir())
        tops = sorted(p for p in base.iterdir() if p.is_dir() and p.name != "info")
    except OSError:
        return None
    resources = tuple(r for r in (_resource(d) for d in infos) if r is not None)
    if not resources:
        return None
    groups = []
    for d in tops:
        schemata = _read(d / "schemata")
        if schemata is not None:
            groups.append(ResctrlGroup(name=d.name, masks=parse_schemata(schemata)))
    default = ResctrlGroup(name="", masks=parse_schemata(_read(base / "schemata") or ""))
    return Resctrl(resources=resources, default=default, groups=tuple(groups), source=f"/{RESCTRL}")
