"""`vmtune plan FILE... [--option VALUE]...` parsed without typer, for the argvs that need nothing else.

Importing typer (and its click) is ~0.1 s, about as much as vmtune's own work on one guest; bench/xml.py
holds `vmtune plan` to half of `virt-xml --edit --print-diff`. This parser accepts only what it can take
exactly as typer would: the long options of ``plan_cmd`` (``--name VALUE``, ``--name=VALUE``, the three
flags), positional files, values converted the way typer converts them (paths, enum literals, counts).
Anything else (``--help``, ``-c``, ``--``, a bad enum value, a missing value, shell completion) returns
None and typer parses the argv as before, with its own messages. tests/test_cli_fast.py checks the table
against typer's command and that both parsers call ``plan_run.plan`` with the same arguments.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from vmtune.core.intent import CoreKind, EmulatorPolicy, HypervMode, MemoryMode, OsFamily, ThreadPolicy

__all__ = ["FLAGS", "OPTIONS", "parse_plan", "run_plan"]

PATH, TEXT, COUNT = "path", "text", "count"
OPTIONS: dict[str, tuple[str, str | type[StrEnum]]] = {
    "--sysfs": ("sysfs", PATH),
    "--capabilities": ("capabilities", PATH),
    "--connect": ("connect", TEXT),
    "--domcapabilities": ("domcapabilities", PATH),
    "--domains": ("domains", PATH),
    "--profile": ("profile", TEXT),
    "--thread-policy": ("thread_policy", ThreadPolicy),
    "--emulator": ("emulator", EmulatorPolicy),
    "--iothreads": ("iothreads", COUNT),
    "--numa": ("numa", TEXT),
    "--memory-mode": ("memory_mode", MemoryMode),
    "--hugepages": ("hugepages", TEXT),
    "--realtime-mask": ("realtime_mask", TEXT),
    "--hyperv": ("hyperv", HypervMode),
    "--reserve": ("reserve", TEXT),
    "--os": ("os", OsFamily),
    "--core-kind": ("core_kind", CoreKind),
}
"""Long option -> (plan_cmd parameter, how typer converts its value)."""
FLAGS = {"--json": "json_out", "--explain": "explain", "--force": "force"}
_TUNING = ("profile", "thread_policy", "emulator", "iothreads", "numa", "memory_mode", "hugepages",
           "realtime_mask", "hyperv", "reserve", "os", "core_kind", "force")  # fmt: skip
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


def _convert(value: str, kind: str | type[StrEnum]) -> object:
    if kind == PATH:
        return _path(value) or _MISSING
    if kind == TEXT:
        return value
    if kind == COUNT:  # IntRange(min=0); anything but plain digits goes to typer
        return int(value) if value.isascii() and value.isdigit() else _MISSING
    assert isinstance(kind, type)
    # click.Choice over the literals, case-sensitive; an enum's own _missing_ must not widen it
    return kind(value) if value in {m.value for m in kind} else _MISSING


def parse_plan(argv: list[str], environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """plan_cmd's keyword arguments for ``argv`` (after ``plan``), or None: let typer parse it."""
    if (os.environ if environ is None else environ).get("_VMTUNE_COMPLETE"):
        return None  # typer answers shell completion requests before parsing
    params: dict[str, Any] = dict.fromkeys(name for name, _ in OPTIONS.values())
    params |= dict.fromkeys(FLAGS.values(), False)
    files: list[Path] = []
    rest = list(argv)
    while rest:
        token = rest.pop(0)
        if not token.startswith("-"):
            path = _path(token)
            if path is None:
                return None
            files.append(path)
            continue
        name, eq, value = token.partition("=")
        if name in FLAGS and not eq:
            params[FLAGS[name]] = True
            continue
        if name not in OPTIONS:
            return None  # --help, -c, --, an unknown option or a flag given a value
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        param, kind = OPTIONS[name]
        converted = _convert(value, kind)
        if converted is _MISSING:
            return None
        params[param] = converted  # repeated: the last one wins, as in click
    if not files:
        return None
    params["files"] = files
    return params


def run_plan(params: dict[str, Any]) -> int:
    """Run `vmtune plan` with what ``parse_plan`` returned: what plan_cmd does with typer's values."""
    from vmtune.cli import plan_run
    from vmtune.cli.intent_flags import Tuning

    tuning = Tuning(**{name: params[name] for name in _TUNING})
    rest = {name: value for name, value in params.items() if name not in _TUNING and name != "files"}
    return plan_run.plan(params["files"], tuning=tuning, **rest)
