"""A tuning knob's declaration: ``knob(...)`` is the default of an ``Intent`` field and carries the rest.

The field gives the knob its name, type and default; the ``Knob`` in its metadata gives the parser, the
text form, the help line, the CLI flag and metadata attribute (both ``--`` + attr / attr), and what the
profiles resolve it to when the operator left it unset. The CLI options, the metadata reader and writer
and ``profiles.resolve`` all read this one declaration (``vmtune.core.intent.model.KNOBS``).

Parsers raise ``ValueError`` with a reason only; the caller prefixes where the text came from (the flag,
or the file and XPath), so the same value fails with the same reason wherever it was written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Generic, TypeVar, overload

from vmtune.core.intent.values import Profile
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["KNOB", "Knob", "format_switch", "knob", "parse_count", "parse_cpuset", "parse_switch"]

T = TypeVar("T")
KNOB = "vmtune.knob"
"""The key of a ``Knob`` in its dataclass field's metadata."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Knob(Generic[T]):
    name: str = ""
    """The Intent field (set when the table is built from the fields)."""
    attr: str = ""
    """The metadata attribute; the CLI flag is ``--attr``. Empty: the name with ``-`` for ``_``."""
    help: str
    parse: Callable[[str], T]
    format: Callable[[T], str] = str
    metavar: str = ""
    """How ``--help`` shows the value (an enum's: ``<a|b>``)."""
    switch: bool = False
    """A bare CLI flag (``--force``), stored as ``yes`` when on and left out when off."""
    profiles: tuple[tuple[Profile, T], ...] = ()
    """(profile, value) the profiles resolve an unset knob to, the first active profile winning."""
    otherwise: T | None = None
    """What an unset knob resolves to when no listed profile is active."""

    @property
    def flag(self) -> str:
        return f"--{self.attr}"

    @property
    def negatable(self) -> bool:
        """A switch a profile can turn on (``--isolate-host`` under realtime): an explicit ``no``
        (``--no-isolate-host``) is stored, so the guest can opt out of its profile's default."""
        return self.switch and bool(self.profiles)

    @property
    def no_flag(self) -> str:
        return f"--no-{self.attr}"

    def named(self, name: str) -> Knob[T]:
        return replace(self, name=name, attr=self.attr or name.replace("_", "-"))

    def text(self, value: T | None) -> str | None:
        """``value`` as the flag or attribute would spell it; None when unset (not stored)."""
        if value is None or (self.switch and not value and not self.negatable):
            return None
        return self.format(value)

    def read(self, text: str, where: str) -> T:
        """Parse ``text``; the InputError says ``WHERE 'TEXT': reason`` (``where``: the flag or XPath)."""
        try:
            return self.parse(text)
        except ValueError as err:
            raise InputError(f"{where} {text!r}: {err}") from None

    def resolve(self, given: T | None, active: Collection[Profile]) -> T | None:
        """``given`` when set, else the value of the first active profile listed, else ``otherwise``."""
        if given is not None:
            return given
        return next((value for profile, value in self.profiles if profile in active), self.otherwise)


def _enum_parser(cls: type[StrEnum]) -> Callable[[str], Any]:
    by_text = {member.value.lower(): member for member in cls}
    choices = ", ".join(by_text)

    def parse(text: str) -> StrEnum:
        try:
            return by_text[text.strip().lower()]
        except KeyError:
            raise ValueError(f"choose from {choices}") from None

    return parse


@overload
def knob(
    parse: Callable[[str], T],
    *,
    default: T,
    help: str,
    attr: str = "",
    format: Callable[[T], str] = str,
    metavar: str = "",
    switch: bool = False,
    profiles: Mapping[Profile, T] | None = None,
    otherwise: T | None = None,
) -> T: ...
@overload
def knob(
    parse: Callable[[str], T],
    *,
    default: None = None,
    help: str,
    attr: str = "",
    format: Callable[[T], str] = str,
    metavar: str = "",
    switch: bool = False,
    profiles: Mapping[Profile, T] | None = None,
    otherwise: T | None = None,
) -> T | None: ...
def knob(
    parse: Callable[[str], T],
    *,
    default: T | None = None,
    help: str,
    attr: str = "",
    format: Callable[[T], str] = str,
    metavar: str = "",
    switch: bool = False,
    profiles: Mapping[Profile, T] | None = None,
    otherwise: T | None = None,
) -> T | None:
    """Declare an Intent field as a knob. ``parse`` may be a StrEnum: its values are then the only texts
    accepted (any case) and ``--help`` lists them.

    Returns a ``dataclasses.field`` (typed as the field's value so the dataclass reads naturally).
    """
    parser = parse
    if isinstance(parse, type) and issubclass(parse, StrEnum):
        metavar = metavar or f"<{'|'.join(member.value for member in parse)}>"
        parser = _enum_parser(parse)
    declared: Knob[T] = Knob(
        attr=attr, help=help, parse=parser, format=format, metavar=metavar, switch=switch,
        profiles=tuple((profiles or {}).items()), otherwise=otherwise,
    )  # fmt: skip
    made: T | None = field(default=default, metadata={KNOB: declared})
    return made


def parse_count(text: str) -> int:
    """A whole number >= 0."""
    clean = text.strip()
    if not clean.isdigit():
        raise ValueError("expected a whole number >= 0")
    return int(clean)


def parse_switch(text: str) -> bool:
    """``yes`` or ``no``, as the metadata spells a switch."""
    clean = text.strip().lower()
    if clean not in ("yes", "no"):
        raise ValueError("expected yes or no")
    return clean == "yes"


def format_switch(on: bool) -> str:
    return "yes" if on else "no"


def parse_cpuset(text: str) -> CpuSet:
    """Host CPUs in kernel/libvirt list syntax (``0-3,^2``)."""
    what = "CPU list"
    try:
        return CpuSet.parse(text, what=what)
    except InputError as err:
        raise ValueError(str(err).removeprefix(f"{what}: ")) from None
