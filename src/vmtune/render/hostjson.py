"""``vmtune host --json``: the topology as JSON with stable keys.

Stable means: every key is always present (``null`` when the source doesn't say), lists are in id order,
CPU and node sets are canonical kernel list strings (``"0-3,8"``), and object keys that are ids
(``distances``, ``owners``) are the id as a decimal string, because JSON keys are strings.
``summary`` carries the integer counts DESIGN.md fixes. ``owners`` (only with tenants, ``--domains``)
maps every CPU to a domain name, ``a+b`` when several domains pin it, or ``free`` / ``reserved`` /
``isolated`` / ``offline`` (``vmtune.core.ledger.ownership`` has the precedence).

``dumps`` prints one top-level key per line and one list item (a CPU, a node, a core) per line: easy to
grep and diff, and it lets the C encoder do the work (``json.dumps(indent=...)`` falls back to the pure
Python encoder, ~5x slower on a 960-CPU host).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vmtune.core.topology.model import CACHE_LEVELS, Cpu, Host, Node, kind_name

__all__ = ["dumps", "host_json"]


def host_json(host: Host, *, owners: Mapping[int, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "host": {
            "name": host.name,
            "arch": host.arch,
            "vendor": host.vendor,
            "model": host.model,
            "memory_total_kib": host.memory_total_kib,
            "cmdline": host.cmdline,
        },
        "summary": host.summary().counts(),
        "cpus": [_cpu(c) for c in host.cpus],
        "sockets": [
            {"index": s.index, "package_id": s.package_id, "cpus": str(s.cpus)} for s in host.sockets
        ],
        "nodes": [_node(n) for n in host.nodes],
        "caches": [
            {
                "index": g.index,
                "level": g.level,
                "cpus": str(g.cpus),
                "size_kib": g.size_kib,
                "cache_id": g.cache_id,
            }
            for g in host.caches
        ],
        "cores": [
            {
                "index": c.index,
                "cpus": str(c.cpus),
                "socket": c.socket,
                "node": c.node,
                **_cache_keys(c.caches),
                "capacity": c.capacity,
                "kind": kind_name(c.kind),
            }
            for c in host.cores
        ],
        "online": str(host.online),
        "offline": str(host.offline),
        "isolated": str(host.isolated),
        "nohz_full": str(host.nohz_full),
        "kind_evidence": host.kind_evidence,
        "warnings": list(host.warnings),
    }
    if owners is not None:
        doc["owners"] = {str(cpu): str(owner) for cpu, owner in sorted(owners.items())}
    return doc


def _cpu(c: Cpu) -> dict[str, Any]:
    return {
        "id": c.id,
        "online": c.online,
        "socket": c.socket,
        "node": c.node,
        "core": c.core,
        "package_id": c.package_id,
        "die_id": c.die_id,
        "cluster_id": c.cluster_id,
        "core_id": c.core_id,
        "capacity": c.capacity,
        **_cache_keys(c.caches),
    }


def _node(n: Node) -> dict[str, Any]:
    return {
        "id": n.id,
        "cpus": str(n.cpus),
        "memory_total_kib": n.mem_total_kib,
        "memory_free_kib": n.mem_free_kib,
        "hugepages": [{"size_kib": h.size_kib, "total": h.total, "free": h.free} for h in n.hugepages],
        "distances": {str(other): dist for other, dist in n.distances},
    }


def _cache_keys(caches: Mapping[int, int]) -> dict[str, int | None]:
    """``l<level>``: the index in ``caches`` of a CPU's or core's group at each tracked level, or null."""
    return {f"l{level}": caches.get(level) for level in CACHE_LEVELS}


def dumps(doc: Mapping[str, Any]) -> str:
    """``doc`` as JSON text: one top-level key per line, list items one per line, everything else compact."""
    compact = json.JSONEncoder(separators=(", ", ": "), ensure_ascii=False).encode
    lines = ["{"]
    items = list(doc.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f"  {compact(key)}: [")
            lines.extend(f"    {compact(v)}," for v in value[:-1])
            lines.append(f"    {compact(value[-1])}")
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {compact(key)}: {compact(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"
