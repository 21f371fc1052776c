"""The TUNING options (DESIGN.md "Commands"), made from the knob table; ``--domcapabilities``.

Each option is a knob of ``vmtune.core.intent.model.KNOBS``: typer passes its text through untouched and
``Tuning.intent`` parses it with the knob's own parser, the one the metadata reader uses, so a value is
accepted or refused alike on the command line and in ``<vmtune:tuning>``; only the error's source differs.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from vmtune.adapters.files import read_bytes
from vmtune.adapters.libvirt import is_local, live_domcaps
from vmtune.adapters.probes import merge_caps, probe_host_caps
from vmtune.core.intent.knob import Knob
from vmtune.core.intent.model import KNOBS, Intent, parse_intent
from vmtune.core.topology.caps import HostCaps
from vmtune.service import HostSource
from vmtune.xmlmap.capabilities import capabilities_caps
from vmtune.xmlmap.domcaps import parse_domcapabilities

__all__ = ["Tuning", "host_caps", "load_caps", "tuning_options"]


def _flag(k: Knob[Any]) -> str:
    return k.flag


@dataclass(frozen=True, slots=True, kw_only=True)
class Tuning:
    """The TUNING flags as given: (knob name, text) for each flag on the command line."""

    flags: tuple[tuple[str, str], ...] = ()

    @property
    def given(self) -> bool:
        """True when any knob was set on the command line (else a stored intent is reused)."""
        return bool(self.flags)

    def intent(self, stored: Intent | None = None) -> Intent:
        """The Intent these flags ask for; with no flags at all, the guest's stored intent wins.

        A bad value raises InputError naming the flag (``--hugepages '3M': expected 2M, 1G or none``).
        """
        if not self.given and stored is not None:
            return stored
        return parse_intent(dict(self.flags), where=_flag)


def _option(k: Knob[Any]) -> inspect.Parameter:
    """The typer parameter for one knob: a bare flag for a switch, else text the knob parses."""
    if k.negatable:
        both = typer.Option(None, f"{k.flag}/{k.no_flag}", help=k.help, show_default=False)
        return inspect.Parameter(k.name, inspect.Parameter.KEYWORD_ONLY, default=both, annotation=bool | None)
    if k.switch:
        switch = typer.Option(False, k.flag, help=k.help)
        return inspect.Parameter(k.name, inspect.Parameter.KEYWORD_ONLY, default=switch, annotation=bool)
    option = typer.Option(None, k.flag, help=k.help, metavar=k.metavar or None, show_default=False)
    return inspect.Parameter(k.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=str | None)


def _given(k: Knob[Any], value: str | bool | None) -> str | None:
    """The flag's text for the knob parser; None when the flag was not on the command line."""
    if k.negatable and isinstance(value, bool):
        return "yes" if value else "no"
    if k.switch:
        return "yes" if value else None
    return value if isinstance(value, str) else None


def tuning_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a typer command every TUNING option after its own; it gets them as one ``tuning: Tuning``.

    typer reads a command's options from its signature, so the wrapper shows ``command``'s parameters
    (less ``tuning``) followed by one per knob, in the table's order (the order ``--help`` lists them).
    """
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "tuning"]
    knobs = [_option(k) for k in KNOBS]

    @functools.wraps(command)
    def wrapper(**params: Any) -> None:
        given = ((k.name, _given(k, params.pop(k.name))) for k in KNOBS)
        tuning = Tuning(flags=tuple((name, text) for name, text in given if text is not None))
        command(**params, tuning=tuning)

    signature = inspect.Signature([*own, *knobs])
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return wrapper


def load_caps(path: Path | None) -> HostCaps | None:
    """Parse ``--domcapabilities FILE`` (None when not given)."""
    if path is None:
        return None
    return parse_domcapabilities(read_bytes(path), source=str(path))


def host_caps(src: HostSource, domcaps: Path | None) -> HostCaps | None:
    """``--domcapabilities FILE`` merged with what the host source itself tells (the file wins).

    * ``--capabilities FILE``: the host CPU's hypervisor flag (nested KVM);
    * the sysfs root (``/`` by default, or ``--sysfs ROOT``): the kernel probes under that root (APICv/AVIC,
      cgroup version and RT runtime, nesting from ``proc/cpuinfo``), so a captured tree is probed like the
      live host; a snapshot archive is not probed;
    * ``--connect URI``: its domcapabilities (unless given as a file), and the probes of ``/`` when the URI
      is local (the kernel that runs its guests).
    """
    parts: list[HostCaps | None] = [load_caps(domcaps)]
    if src.capabilities is not None:
        parts.append(capabilities_caps(read_bytes(src.capabilities), source=str(src.capabilities)))
    elif src.connect is not None:
        if domcaps is None:
            parts.append(
                live_domcaps(src.connect, lambda why: print(f"vmtune: warning: {why}", file=sys.stderr))
            )
        if is_local(src.connect):
            parts.append(probe_host_caps(Path("/")))
    else:
        root = src.sysfs or Path("/")
        if root.is_dir():
            parts.append(probe_host_caps(root))
    return merge_caps(*parts)
