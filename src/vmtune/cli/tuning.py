"""The TUNING options (DESIGN.md "Commands") as typer declarations; Tuning itself: cli.intent_flags."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

# re-exported: Tuning and the caps loaders live in a typer-free module (cli.plan_fast skips typer)
from vmtune.cli.intent_flags import Tuning, host_caps, load_caps
from vmtune.core.intent.model import (
    CoreKind,
    CpuPolicy,
    EmulatorPolicy,
    HypervMode,
    MemoryMode,
    OsFamily,
    ThreadPolicy,
)

__all__ = [
    "CoreKindOpt",
    "CpuPolicyOpt",
    "DomcapsOpt",
    "EmulatorOpt",
    "ForceOpt",
    "HugepagesOpt",
    "HypervOpt",
    "IOThreadsOpt",
    "MemoryModeOpt",
    "NumaOpt",
    "OsOpt",
    "ProfileOpt",
    "RealtimeMaskOpt",
    "ReserveOpt",
    "ThreadPolicyOpt",
    "Tuning",
    "host_caps",
    "load_caps",
    "tuning_options",
]

ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", help="balanced|latency|realtime|windows, comma-combinable.", metavar="LIST"),
]
CpuPolicyOpt = Annotated[
    CpuPolicy | None,
    typer.Option("--cpu-policy", help="dedicated: a host CPU per vCPU; shared: vCPUs time-share a pool."),
]
ThreadPolicyOpt = Annotated[
    ThreadPolicy | None, typer.Option("--thread-policy", help="SMT siblings: prefer, isolate or require.")
]
EmulatorOpt = Annotated[
    EmulatorPolicy | None, typer.Option("--emulator", help="Emulator thread: share or isolate.")
]
IOThreadsOpt = Annotated[int | None, typer.Option("--iothreads", min=0, help="Number of IOThreads.")]
NumaOpt = Annotated[str | None, typer.Option("--numa", help="auto, off, or a number of host nodes.")]
MemoryModeOpt = Annotated[
    MemoryMode | None, typer.Option("--memory-mode", help="numatune mode for the guest memory.")
]
HugepagesOpt = Annotated[str | None, typer.Option("--hugepages", help="2M, 1G or none.")]
RealtimeMaskOpt = Annotated[
    str | None,
    typer.Option("--realtime-mask", help="vCPUs that get SCHED_FIFO, cpuset syntax (^0).", metavar="SPEC"),
]
HypervOpt = Annotated[
    HypervMode | None, typer.Option("--hyperv", help="Hyper-V enlightenments: auto/on/off.")
]
ReserveOpt = Annotated[
    str | None, typer.Option("--reserve", help="Host CPUs never given to guests.", metavar="CPUSET")
]
OsOpt = Annotated[OsFamily | None, typer.Option("--os", help="Guest OS when libosinfo metadata is missing.")]
CoreKindOpt = Annotated[CoreKind | None, typer.Option("--core-kind", help="Hybrid CPUs: big, little or any.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Ignore host gates (domcapabilities, cgroup RT).")]
DomcapsOpt = Annotated[
    Path | None,
    typer.Option(
        "--domcapabilities", help="`virsh domcapabilities` XML: what QEMU/KVM provide.", metavar="FILE"
    ),
]

_OPTIONS: dict[str, Any] = {
    "profile": ProfileOpt,
    "cpu_policy": CpuPolicyOpt,
    "thread_policy": ThreadPolicyOpt,
    "emulator": EmulatorOpt,
    "iothreads": IOThreadsOpt,
    "numa": NumaOpt,
    "memory_mode": MemoryModeOpt,
    "hugepages": HugepagesOpt,
    "realtime_mask": RealtimeMaskOpt,
    "hyperv": HypervOpt,
    "reserve": ReserveOpt,
    "os": OsOpt,
    "core_kind": CoreKindOpt,
    "force": ForceOpt,
}
"""Tuning field -> its typer option, in ``Tuning``'s field order (the order ``--help`` lists them)."""


def tuning_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a typer command every TUNING option after its own; it gets them as one ``tuning: Tuning``.

    typer reads a command's options from its signature, so the wrapper shows ``command``'s parameters
    (less ``tuning``) followed by one per ``Tuning`` field, with that field's default.
    """
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "tuning"]
    knobs = [
        inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.default,
                          annotation=_OPTIONS[f.name])
        for f in fields(Tuning)
    ]  # fmt: skip

    @functools.wraps(command)
    def wrapper(**params: Any) -> None:
        tuning = Tuning(**{p.name: params.pop(p.name) for p in knobs})
        command(**params, tuning=tuning)

    signature = inspect.Signature([*own, *knobs])
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return wrapper
