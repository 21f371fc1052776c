"""Fleet mode: `vmtune check --connect A --connect B ...` and `vmtune host --connect A --connect B ...`.

Each host is read over its own libvirt connection, in parallel (``vmtune.adapters.fleet``); the result is
one summary table (or one JSON document) with a row per host, and the exit code is the worst of all hosts.
"Worst" ranks failures to look above findings: 0 < 5 (findings) < 3 < 2 < 4 (libvirt, e.g. unreachable)
< 1, so a CI job never reads "problems found" (5) when a host could not be checked at all.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vmtune.adapters.fleet import Outcome, over_hosts
from vmtune.adapters.libvirt import connect
from vmtune.core.audit.engine import Finding, run_rules
from vmtune.core.plan import Level
from vmtune.core.topology.model import Host, Summary
from vmtune.cpuset import CpuSet
from vmtune.errors import ExitCode, InputError
from vmtune.render.check import finding_dict, render_table, summary
from vmtune.render.console import make_console
from vmtune.render.fleet import FleetRow, print_fleet
from vmtune.render.hostjson import host_json

__all__ = ["check_fleet", "findings_exit", "host_fleet", "refuse_single_host_flags", "worst_exit"]

_RANK = {0: 0, 5: 1, 3: 2, 2: 3, 4: 4, 1: 5}
_SEVERITY = {Level.INFO: 0, Level.WARNING: 1, Level.ERROR: 2}


def findings_exit(findings: Iterable[Finding], fail_on: Level) -> int:
    """5 when a finding is at or above ``fail_on`` (``--fail-on``: error, warning or info), else 0."""
    floor = _SEVERITY[fail_on]
    return int(ExitCode.FINDINGS if any(_SEVERITY[f.severity] >= floor for f in findings) else ExitCode.OK)


def worst_exit(codes: Iterable[int]) -> int:
    """The exit code of a fleet run: the worst of the hosts' codes (see the module docstring)."""
    return max(codes, key=lambda c: _RANK.get(c, 6), default=int(ExitCode.OK))


def refuse_single_host_flags(others: Mapping[str, object]) -> None:
    given = [flag for flag, value in others.items() if value not in (None, False)]
    if given:
        raise InputError(f"{', '.join(given)}: not with several --connect (each host is read from its URI)")


def _topology(s: Summary) -> str:
    """sockets/NUMA nodes/cores/threads, e.g. ``2s/2n/16c/32t``."""
    return f"{s.sockets}s/{s.numa_nodes}n/{s.cores}c/{s.threads}t"


# -- check ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Checked:
    topology: Summary
    guests: int
    findings: tuple[Finding, ...]


def check_fleet(
    uris: Sequence[str],
    *,
    all_domains: bool,
    as_json: bool,
    reserved: CpuSet | None,
    select: frozenset[str] | None,
    ignore: frozenset[str],
    fail_on: Level = Level.ERROR,
) -> int:
    from vmtune.cli.check_cmd import live_inputs  # check_cmd imports this module for fleet mode

    def job(uri: str) -> _Checked:
        host, caps, targets, tenants = live_inputs(uri, None, all_domains=all_domains)
        found = run_rules(host, targets, tenants=tenants, caps=caps, reserved=reserved, select=select,
                          ignore=ignore)  # fmt: skip
        return _Checked(topology=host.summary(), guests=len(targets), findings=tuple(found))

    outcomes = over_hosts(uris, job)
    codes = [
        findings_exit(o.value.findings, fail_on) if o.value is not None else o.exit_code for o in outcomes
    ]
    worst = worst_exit(codes)
    if as_json:
        print(json.dumps({"hosts": [_check_doc(o, c) for o, c in zip(outcomes, codes, strict=True)],
                          "exit": worst}, indent=2))  # fmt: skip
        return worst
    console = make_console()
    rows = []
    for outcome, code in zip(outcomes, codes, strict=True):
        checked = outcome.value
        if checked is None:
            rows.append(FleetRow(uri=outcome.uri, reachable=False, error=outcome.error, exit_code=code,
                                 seconds=outcome.seconds))  # fmt: skip
            print(f"vmtune: error: {outcome.error}", file=sys.stderr)
            continue
        if checked.findings:
            console.rule(outcome.uri, align="left")
            render_table(console, checked.findings, checked.guests)
        s = summary(checked.findings, checked.guests)
        cells = (
            str(checked.guests),
            f"{s['errors']}/{s['warnings']}/{s['info']}",
            _topology(checked.topology),
        )
        rows.append(FleetRow(uri=outcome.uri, reachable=True, cells=cells, exit_code=code,
                             seconds=outcome.seconds))  # fmt: skip
    columns = ("guests", "err/warn/info", "topology")
    print_fleet(console, title="vmtune check", columns=columns, rows=rows, worst=worst)
    return worst


def _check_doc(outcome: Outcome[_Checked], code: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"uri": outcome.uri, "reachable": outcome.value is not None, "exit": code,
                           "seconds": round(outcome.seconds, 3)}  # fmt: skip
    if outcome.value is None:
        return doc | {"error": outcome.error}
    checked = outcome.value
    return doc | {
        "topology": checked.topology.counts(),
        "summary": summary(checked.findings, checked.guests),
        "findings": [finding_dict(f) for f in checked.findings],
    }


# -- host -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Seen:
    host: Host
    defined: int
    running: int


def _read_host(uri: str) -> _Seen:
    with connect(uri, readonly=True) as conn:
        host = conn.host()
        guests = conn.tenants()
    return _Seen(host=host, defined=len(guests), running=sum(1 for g in guests if g.running))


def host_fleet(uris: Sequence[str], *, as_json: bool, others: Mapping[str, object] | None = None) -> int:
    """`host --connect A --connect B ...`: topology and guest counts of every host, in parallel.

    ``others`` are the single-host flags given on the command line (refused: each host is read from its
    URI, and the CPU map is one host's picture).
    """
    refuse_single_host_flags(others or {})
    outcomes = over_hosts(uris, _read_host)
    worst = worst_exit(o.exit_code for o in outcomes)
    if as_json:
        docs: list[dict[str, Any]] = []
        for o in outcomes:
            doc: dict[str, Any] = {"uri": o.uri, "reachable": o.value is not None, "exit": o.exit_code,
                                   "seconds": round(o.seconds, 3)}  # fmt: skip
            if o.value is None:
                docs.append(doc | {"error": o.error})
            else:
                guests = {"defined": o.value.defined, "running": o.value.running}
                docs.append(doc | {"guests": guests, "host": host_json(o.value.host)})
        print(json.dumps({"hosts": docs, "exit": worst}, indent=2))
        return worst
    rows = []
    for o in outcomes:
        if o.value is None:
            print(f"vmtune: error: {o.error}", file=sys.stderr)
            rows.append(FleetRow(uri=o.uri, reachable=False, error=o.error, exit_code=o.exit_code,
                                 seconds=o.seconds))  # fmt: skip
            continue
        host, s = o.value.host, o.value.host.summary()
        memory = f"{host.memory_total_kib / 1048576:.1f} GiB" if host.memory_total_kib else "?"
        cells = (_topology(s), str(s.threads_per_core), memory, f"{o.value.running}/{o.value.defined}")
        rows.append(FleetRow(uri=o.uri, reachable=True, cells=cells, seconds=o.seconds))
    columns = ("topology", "smt", "memory", "guests run/def")
    print_fleet(make_console(), title="vmtune host", columns=columns, rows=rows, worst=worst)
    return worst
