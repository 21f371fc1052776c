"""Run one read-only job per libvirt URI in parallel (``vmtune check|host --connect A --connect B ...``).

libvirt's own remote URIs (``qemu+ssh://host/system``, ``qemu+tls://...``) are the transport: each job opens
its own connection, so a slow or dead host costs its own thread only. libvirt-python drops the GIL inside
every libvirt call and a ``virConnect`` is not shared between threads, so plain threads are enough.

A job's ``VmtuneError`` (``LibvirtError`` = exit 4 for an unreachable host) becomes that host's outcome; the
other hosts are still reported. Outcomes keep the order of the URIs on the command line, duplicates
included (each ``--connect`` is one row).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from vmtune.errors import ExitCode, InputError, VmtuneError

__all__ = ["HOST_TIMEOUT", "HOST_TIMEOUT_ENV", "MAX_PARALLEL", "Outcome", "host_timeout", "over_hosts"]

T = TypeVar("T")
MAX_PARALLEL = 16
"""Connections open at once: each is a socket (and an ssh process for qemu+ssh), not CPU work."""
HOST_TIMEOUT_ENV = "VMTUNE_HOST_TIMEOUT"


HOST_TIMEOUT = 120.0
"""Seconds one host of a fleet run may take by default (``VMTUNE_HOST_TIMEOUT`` overrides, 0 = no limit): a
TCP connect to a dead host can hang for minutes, and ``qemu+ssh`` waits forever on a password prompt."""


def host_timeout() -> float:
    """The per-host limit in seconds (``math.inf``: none)."""
    raw = os.environ.get(HOST_TIMEOUT_ENV, "").strip()
    if not raw:
        return HOST_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{HOST_TIMEOUT_ENV}={raw!r}: expected seconds (0 = no limit)") from None
    return value if value > 0 else math.inf


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome(Generic[T]):
    uri: str
    value: T | None = None
    error: str | None = None
    """One line naming the URI and the libvirt operation that failed."""
    exit_code: int = int(ExitCode.OK)
    seconds: float = 0.0


def _expire(
    uris: Sequence[str],
    started: dict[int, float],
    results: dict[int, Outcome[T]],
    limit: float,
    spawn: Callable[[], None],
) -> float | None:
    """Report the hosts past ``limit`` as unreachable (a fresh worker replaces each); the next wait."""
    now = time.monotonic()
    for i, t0 in list(started.items()):
        if i not in results and now - t0 >= limit:
            results[i] = Outcome(
                uri=uris[i],
                error=f"{uris[i]}: no answer within {limit:g} s (host down, or ssh waiting "
                f"for a password?); {HOST_TIMEOUT_ENV} sets the limit",
                exit_code=int(ExitCode.LIBVIRT),
                seconds=now - t0,
            )
            spawn()
    left = [t0 + limit - now for i, t0 in started.items() if i not in results]
    return max(0.01, min(left)) if left else None


def _run(uri: str, job: Callable[[str], T]) -> Outcome[T]:
    start = time.monotonic()
    try:
        value = job(uri)
    except VmtuneError as err:
        message = str(err) if uri in str(err) else f"{uri}: {err}"
        return Outcome(uri=uri, error=message, exit_code=int(err.exit_code), seconds=time.monotonic() - start)
    return Outcome(uri=uri, value=value, seconds=time.monotonic() - start)


def over_hosts(
    uris: Sequence[str],
    job: Callable[[str], T],
    *,
    parallel: int = MAX_PARALLEL,
    timeout: float | None = None,
) -> list[Outcome[T]]:
    """``job(uri)`` for every URI, at most ``parallel`` at a time; one Outcome per URI, in order.

    A host that has not answered ``timeout`` seconds after its job started is reported as unreachable
    (exit 4) and the run goes on: a libvirt call cannot be interrupted, so its worker is a daemon thread
    that is abandoned (it never takes more work, and it does not keep the process alive), and a fresh
    worker takes its place so one dead host does not shrink the parallelism.
    """
    n = len(uris)
    if not n:
        return []
    limit = host_timeout() if timeout is None else timeout
    results: dict[int, Outcome[T]] = {}
    started: dict[int, float] = {}
    todo = deque(range(n))
    cond = threading.Condition()

    def worker() -> None:
        while True:
            with cond:
                if not todo:
                    return
                i = todo.popleft()
                started[i] = time.monotonic()
            out = _run(uris[i], job)
            with cond:
                if i in results:
                    return  # timed out meanwhile: a replacement worker has taken over
                results[i] = out
                cond.notify_all()

    def spawn() -> None:
        threading.Thread(target=worker, name="vmtune-host", daemon=True).start()

    for _ in range(max(1, min(parallel, n))):
        spawn()
    with cond:
        while len(results) < n:
            wait = _expire(uris, started, results, limit, spawn) if limit != math.inf else None
            if len(results) < n:
                cond.wait(wait)
    return [results[i] for i in range(n)]
