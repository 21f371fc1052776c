"""Run one read-only job per libvirt URI in parallel (``vmtune check|host --connect A --connect B ...``).

libvirt's own remote URIs (``qemu+ssh://host/system``, ``qemu+tls://...``) are the transport: each job opens
its own connection, so a slow or dead host costs its own thread only. libvirt-python drops the GIL inside
every libvirt call and a ``virConnect`` is not shared between threads, so plain threads are enough.

A job's ``VmtuneError`` (``LibvirtError`` = exit 4 for an unreachable host) becomes that host's outcome; the
other hosts are still reported. Outcomes keep the order of the URIs on the command line, duplicates
included (each ``--connect`` is one row).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from vmtune.errors import ExitCode, VmtuneError

__all__ = ["MAX_PARALLEL", "Outcome", "over_hosts"]

T = TypeVar("T")
MAX_PARALLEL = 16
"""Connections open at once: each is a socket (and an ssh process for qemu+ssh), not CPU work."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome(Generic[T]):
    uri: str
    value: T | None = None
    error: str | None = None
    """One line naming the URI and the libvirt operation that failed."""
    exit_code: int = int(ExitCode.OK)
    seconds: float = 0.0


def _run(uri: str, job: Callable[[str], T]) -> Outcome[T]:
    start = time.monotonic()
    try:
        value = job(uri)
    except VmtuneError as err:
        message = str(err) if uri in str(err) else f"{uri}: {err}"
        return Outcome(uri=uri, error=message, exit_code=int(err.exit_code), seconds=time.monotonic() - start)
    return Outcome(uri=uri, value=value, seconds=time.monotonic() - start)


def over_hosts(
    uris: Sequence[str], job: Callable[[str], T], *, parallel: int = MAX_PARALLEL
) -> list[Outcome[T]]:
    """``job(uri)`` for every URI, at most ``parallel`` at a time; one Outcome per URI, in order."""
    if not uris:
        return []
    with ThreadPoolExecutor(
        max_workers=max(1, min(parallel, len(uris))), thread_name_prefix="vmtune-host"
    ) as pool:
        return list(pool.map(lambda uri: _run(uri, job), uris))
