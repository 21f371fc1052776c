"""Plain `vmtune plan` and `vmtune host` argvs parsed without typer: one table-driven parser, one table each.

Importing typer (and its click) is ~0.1 s, about as much as vmtune's own work on one guest and a fifth of
the `vmtune host` budget on a 900-CPU host (bench/xml.py, bench/host_render.py). This parser accepts only
what it can take exactly as typer would: the long options in a command's ``Spec`` (``--name VALUE``,
``--name=VALUE``, its flags), positional paths where the command takes them, values converted the way
typer converts them (paths, enum literals, counts). Anything else (``--help``, ``-c``, ``--``, a bad enum
value, a missing value, ``host snapshot``, ``host --connect``, shell completion) returns None and typer
parses the argv as before, with its own messages. tests/test_cli_fast.py holds each table to typer's
command and checks that both parsers make the same call with the same arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from enum import StrEnum

__all__ = ["COMMANDS", "HOST", "PLAN", "Spec", "enum_kind", "fast_command", "parse", "run_host", "run_plan"]

PATH, TEXT, COUNT = "path", "text", "count"
Kind = str
"""PATH, TEXT, COUNT, or the name of a ``vmtune.core.intent.model`` enum (imported when a value needs it:
`vmtune host` has no enum options and skips that module)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Spec:
    """What the fast parser takes for one command (the rest goes to typer)."""

    options: Mapping[str, tuple[str, Kind]]
    """Long option -> (the typer command's parameter, how typer converts its value)."""
    flags: Mapping[str, str]
    """Boolean flag -> parameter (no ``--no-`` form, no value)."""
    positional: str | None = None
    """The parameter that takes one or more positional paths; None: the command takes none here."""


PLAN = Spec(
    options={
        "--sysfs": ("sysfs", PATH),
        "--capabilities": ("capabilities", PATH),
        "--connect": ("connect", TEXT),
        "--domcapabilities": ("domcapabilities", PATH),
        "--domains": ("domains", PATH),
        "--profile": ("profile", TEXT),
        "--cpu-policy": ("cpu_policy", "CpuPolicy"),
        "--thread-policy": ("thread_policy", "ThreadPolicy"),
        "--emulator": ("emulator", "EmulatorPolicy"),
        "--iothreads": ("iothreads", COUNT),
        "--numa": ("numa", TEXT),
        "--memory-mode": ("memory_mode", "MemoryMode"),
        "--hugepages": ("hugepages", TEXT),
        "--realtime-mask": ("realtime_mask", TEXT),
        "--hyperv": ("hyperv", "HypervMode"),
        "--reserve": ("reserve", TEXT),
        "--os": ("os", "OsFamily"),
        "--core-kind": ("core_kind", "CoreKind"),
    },
    flags={"--json": "json_out", "--explain": "explain", "--force": "force"},
    positional="files",
)
"""plan_cmd. ``-c`` is left to typer (a short option may be glued to its value: ``-cURI``)."""

HOST = Spec(
    options={
        "--sysfs": ("sysfs", PATH),
        "--capabilities": ("capabilities", PATH),
        "--domains": ("domains", PATH),
        "--reserve": ("reserve", TEXT),
    },
    flags={"--json": "as_json", "--map": "as_map"},
)
"""host_cmd's group callback. No positionals: a word after ``host`` is a subcommand (``snapshot``) or
typer's "No such command". ``--connect`` (repeatable: fleet mode) is typer's too."""

_TUNING = ("profile", "cpu_policy", "thread_policy", "emulator", "iothreads", "numa", "memory_mode",
           "hugepages", "realtime_mask", "hyperv", "reserve", "os", "core_kind", "force")  # fmt: skip
_MISSING = object()


def _path(value: str) -> Path | None:
    # typer's TyperPath(readable=True): an existing path it can't read is a usage error (typer says so)
    if not value:
        return None
    try:
        os.stat(value)
    except OSError:
        return Path(value)
    return Path(value) if os.access(value, os.R_OK) else None


def _convert(value: str, kind: Kind) -> object:
    if kind == PATH:
        return _path(value) or _MISSING
    if kind == TEXT:
        return value
    if kind == COUNT:  # IntRange(min=0); anything but plain digits goes to typer
        return int(value) if value.isascii() and value.isdigit() else _MISSING
    enum = enum_kind(kind)
    assert enum is not None, kind
    # click.Choice over the literals, case-sensitive; an enum's own _missing_ must not widen it
    return enum(value) if value in {m.value for m in enum} else _MISSING


def enum_kind(kind: Kind) -> type[StrEnum] | None:
    """The enum a kind names, or None for PATH/TEXT/COUNT."""
    if kind in (PATH, TEXT, COUNT):
        return None
    from vmtune.core.intent import model as intent

    enum: type[StrEnum] = getattr(intent, kind)
    return enum


def parse(spec: Spec, argv: list[str], environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The typer command's keyword arguments for ``argv`` (after the command name), or None: ask typer."""
    if (os.environ if environ is None else environ).get("_VMTUNE_COMPLETE"):
        return None  # typer answers shell completion requests before parsing
    params: dict[str, Any] = dict.fromkeys(name for name, _ in spec.options.values())
    params |= dict.fromkeys(spec.flags.values(), False)
    paths: list[Path] = []
    rest = list(argv)
    while rest:
        token = rest.pop(0)
        if not token.startswith("-"):
            path = _path(token) if spec.positional else None
            if path is None:
                return None
            paths.append(path)
            continue
        name, eq, value = token.partition("=")
        if name in spec.flags and not eq:
            params[spec.flags[name]] = True
            continue
        if name not in spec.options:
            return None  # --help, -c, --, an unknown option or a flag given a value
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        param, kind = spec.options[name]
        converted = _convert(value, kind)
        if converted is _MISSING:
            return None
        params[param] = converted  # repeated: the last one wins, as in click
    if spec.positional is not None:
        if not paths:
            return None  # typer: "Missing argument"
        params[spec.positional] = paths
    return params


def run_plan(params: dict[str, Any]) -> int:
    """`vmtune plan` with what ``parse(PLAN, ...)`` returned: what plan_cmd does with typer's values."""
    from vmtune.cli import plan_run
    from vmtune.cli.intent_flags import Tuning

    tuning = Tuning(**{name: params[name] for name in _TUNING})
    rest = {name: value for name, value in params.items() if name not in _TUNING and name != "files"}
    return plan_run.plan(params["files"], tuning=tuning, **rest)


def run_host(params: dict[str, Any]) -> int:
    """`vmtune host` with what ``parse(HOST, ...)`` returned: host_cmd's callback without fleet mode."""
    from vmtune.cli import host_run

    host_run.host(connect=None, **params)
    return 0


COMMANDS: dict[str, tuple[Spec, Callable[[dict[str, Any]], int]]] = {
    "plan": (PLAN, run_plan),
    "host": (HOST, run_host),
}


def fast_command(argv: list[str]) -> Callable[[], int] | None:
    """``argv`` (after ``vmtune``) as a call that skips typer, or None when typer must parse it."""
    entry = COMMANDS.get(argv[0]) if argv else None
    if entry is None:
        return None
    spec, run = entry
    params = parse(spec, argv[1:])
    if params is None:
        return None
    return lambda: run(params)
