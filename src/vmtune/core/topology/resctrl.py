"""The host's cache allocation (``/sys/fs/resctrl``, Intel RDT CAT / AMD L3 QoS) as plain data.

The kernel (Documentation/filesystems/resctrl.rst) shows one ``info/<RESOURCE>`` directory per cache
resource: ``L3`` (code and data share the ways), or ``L3CODE`` and ``L3DATA`` when CDP is on, each with
``cbm_mask`` (every way the group may use, as hex bits), ``min_cbm_bits``, ``num_closids`` (how many
control groups the hardware holds, the default group included) and ``shareable_bits`` (ways other
agents, such as I/O, may use too). The default group's ``schemata`` lines are ``L3:<id>=<mask>;...``,
one mask per cache instance; every other directory at the top is a control group with its own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Resctrl", "ResctrlGroup", "ResctrlResource", "resource_type"]

_TYPES = {"": "both", "CODE": "code", "DATA": "data"}


def resource_type(name: str) -> tuple[int, str] | None:
    """(cache level, libvirt type) of a resctrl resource name: ``L3`` -> (3, both), ``L3CODE`` ->
    (3, code); None for what is not a cache (``MB``, ``SMBA``)."""
    if not name.startswith("L") or len(name) < 2 or not name[1].isdigit():
        return None
    kind = _TYPES.get(name[2:])
    return None if kind is None else (int(name[1]), kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResctrlResource:
    """One cache resource under ``info/``."""

    name: str
    """``L3``, ``L3CODE``, ``L3DATA``, ``L2``..."""
    cbm_mask: int
    min_cbm_bits: int = 1
    num_closids: int = 1
    shareable_bits: int = 0

    @property
    def level(self) -> int:
        found = resource_type(self.name)
        return 0 if found is None else found[0]

    @property
    def type(self) -> str:
        """libvirt's ``<cache type=>``: both, code or data."""
        found = resource_type(self.name)
        return "both" if found is None else found[1]

    @property
    def ways(self) -> int:
        """Bits of the capacity bitmask: each is an equal slice (a way) of every instance of the cache."""
        return self.cbm_mask.bit_count()


@dataclass(frozen=True, slots=True, kw_only=True)
class ResctrlGroup:
    """A control group: its directory name ("" for the default group) and its masks."""

    name: str
    masks: tuple[tuple[str, int, int], ...] = ()
    """(resource name, cache id, capacity bitmask) for each entry of its ``schemata``."""

    def mask(self, resource: str, cache_id: int) -> int | None:
        return next((m for r, i, m in self.masks if r == resource and i == cache_id), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resctrl:
    """What ``/sys/fs/resctrl`` holds: the cache resources, the default group and the other groups."""

    resources: tuple[ResctrlResource, ...]
    default: ResctrlGroup
    groups: tuple[ResctrlGroup, ...] = ()
    """Every control group besides the default one (libvirt names its own ``qemu-<id>-<guest>-<cachetune
    id>``), sorted by name."""
    source: str = "/sys/fs/resctrl"

    def resources_at(self, level: int) -> tuple[ResctrlResource, ...]:
        """The resources of one cache level: ``L3`` alone, or ``L3CODE`` and ``L3DATA`` with CDP on."""
        return tuple(r for r in self.resources if r.level == level)
