"""Attribute views shared by the element modules: one declaration reads and writes an attribute.

An ``Attr`` names an XML attribute, the codec between its text and a Python value, and the model field it
feeds (the same name on ``GuestSpec``, ``Plan`` and the small value types). ``Attr.read`` parses it and
raises ``InputError`` naming the file and XPath; ``Attr.write`` puts a value back with ``tree.set_attr``,
so attributes vmtune does not model stay where they are. A ``Record`` groups the attributes of a repeated
child such as ``<vcpupin>`` with the dataclass it maps to, so adding an attribute is one line in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from lxml import etree

from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.units import LIBVIRT_UNIT_BYTES
from vmtune.xmlmap import tree

__all__ = [
    "COUNT",
    "CPUS",
    "CPUS_OR_ALL",
    "INT",
    "ON",
    "ONOFF",
    "STR",
    "WORD",
    "YESNO",
    "Attr",
    "Codec",
    "Field",
    "Fields",
    "Reader",
    "Record",
    "Size",
    "memory_kib",
    "read_fields",
    "write_fields",
]

Element = etree._Element
T = TypeVar("T")
R = TypeVar("R")
Fields = dict[str, Any]
"""Keyword arguments for ``GuestSpec``, as each element module reads them."""


def memory_kib(value: str, unit: str | None, where: str) -> int:
    """A libvirt scaled integer (``<memory unit='GiB'>4</memory>``) in KiB, rounded up like libvirt."""
    factor = LIBVIRT_UNIT_BYTES.get((unit or "KiB").strip().lower())
    if factor is None:
        raise InputError(f"{where}: unknown memory unit {unit!r}")
    try:
        number = int(value.strip())
    except ValueError:
        raise InputError(f"{where}: not an integer: {value.strip()[:40]!r}") from None
    if number < 0:
        raise InputError(f"{where}: negative memory size")
    return -(-number * factor // 1024)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reader:
    """Parses values out of one document; every error names ``source`` and the XPath of the bad value."""

    source: str

    def where(self, elem: Element, attr: str | None = None) -> str:
        path = elem.getroottree().getpath(elem)
        return f"{self.source}: {path}" + (f"/@{attr}" if attr else "")

    def int_attr(self, elem: Element, name: str) -> int | None:
        raw = elem.get(name)
        if raw is None:
            return None
        text = str(raw).strip()
        try:
            return int(text, 0) if text.startswith("0x") else int(text)
        except ValueError:
            raise InputError(f"{self.where(elem, name)}: not an integer: {str(raw)[:40]!r}") from None

    def text_int(self, elem: Element) -> int:
        try:
            return int((elem.text or "").strip())
        except ValueError:
            raise InputError(f"{self.where(elem)}: not an integer: {(elem.text or '')[:40]!r}") from None

    def cpuset(self, elem: Element, name: str) -> CpuSet | None:
        raw = elem.get(name)
        if raw is None:
            return None
        # the XPath is built only on error: lxml's getpath counts siblings, so building it for each of
        # thousands of <vcpupin> made reading quadratic; parse's message is ``WHAT: reason``
        try:
            return CpuSet.parse(str(raw), what="")
        except InputError as err:
            raise InputError(f"{self.where(elem, name)}{err}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec(Generic[T]):
    """Text <-> value for one attribute; ``parse`` returns None for "not set"."""

    parse: Callable[[Reader, Element, str], T | None]
    format: Callable[[T], str | None]


def _text(r: Reader, elem: Element, name: str) -> str | None:
    return tree.attr(elem, name)


def _word(r: Reader, elem: Element, name: str) -> str | None:
    return tree.attr(elem, name) or None


def _count(r: Reader, elem: Element, name: str) -> int | None:
    return r.int_attr(elem, name) or None


def _flag(on: tuple[str, ...]) -> Callable[[Reader, Element, str], bool | None]:
    def parse(r: Reader, elem: Element, name: str) -> bool | None:
        value = elem.get(name)
        return None if value is None else str(value) in on

    return parse


INT: Codec[int] = Codec(parse=Reader.int_attr, format=str)
COUNT: Codec[int] = Codec(parse=_count, format=str)
"""A count where 0 means unset, as libvirt reads topology numbers."""
STR: Codec[str] = Codec(parse=_text, format=str)
WORD: Codec[str] = Codec(parse=_word, format=str)
"""Text where an empty value counts as absent, so the attribute's default applies."""
CPUS: Codec[CpuSet] = Codec(parse=Reader.cpuset, format=str)
CPUS_OR_ALL: Codec[CpuSet] = Codec(parse=Reader.cpuset, format=lambda cpus: str(cpus) or None)
"""A CPU or node list where the empty set means "no restriction": libvirt rejects ``cpuset=''``."""
ONOFF: Codec[bool] = Codec(parse=_flag(("on", "yes")), format=lambda on: "on" if on else "off")
ON: Codec[bool] = Codec(parse=_flag(("on",)), format=lambda on: "on" if on else "off")
"""A switch where only the literal ``on`` counts (``<hyperv>`` children)."""
YESNO: Codec[bool] = Codec(parse=_flag(("yes",)), format=lambda on: "yes" if on else "no")


class Field(Protocol):
    """What a Record needs of its members: a model key, a reader and a writer."""

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str: ...

    def read(self, r: Reader, elem: Element) -> Any: ...

    def write(self, elem: Element, value: Any) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Attr(Generic[T]):
    """One attribute of an owned element, declared once for both directions."""

    name: str
    codec: Codec[T]
    field: str = ""
    """The model field it maps to; empty means the attribute's own name."""
    default: T | None = None
    """What reading an absent attribute gives."""
    required: bool = False
    keep_on_none: bool = False
    """Writing None leaves the attribute as it is (the plan's "leave alone") instead of removing it."""
    implied: T | None = None
    """libvirt's implicit value: not written when the value equals it and the file does not have it, since
    older schemas reject some such attributes (``clusters`` before libvirt 10.1)."""

    @property
    def key(self) -> str:
        return self.field or self.name

    def read(self, r: Reader, elem: Element) -> T | None:
        value = self.codec.parse(r, elem, self.name)
        if value is None and self.required:
            raise InputError(f"{r.where(elem, self.name)}: missing")
        return self.default if value is None else value

    def need(self, r: Reader, elem: Element) -> T:
        """The value, for code that cannot go on without it (InputError when absent)."""
        value = self.read(r, elem)
        if value is None:
            raise InputError(f"{r.where(elem, self.name)}: missing")
        return value

    def write(self, elem: Element, value: T | None) -> None:
        if value is None:
            if not self.keep_on_none:
                tree.set_attr(elem, self.name, None)
            return
        if self.implied is not None and value == self.implied and elem.get(self.name) is None:
            return
        tree.set_attr(elem, self.name, self.codec.format(value))


@dataclass(frozen=True, slots=True, kw_only=True)
class Size:
    """A memory size attribute with its unit attribute; written in KiB, read in any libvirt unit."""

    name: str
    unit: str = "unit"
    field: str = ""
    default: int | None = None
    blame_element: bool = False
    """Errors name the element's XPath rather than the attribute's (as ``<cell memory=>`` always has)."""

    @property
    def key(self) -> str:
        return self.field or self.name

    def read(self, r: Reader, elem: Element) -> int | None:
        raw = elem.get(self.name)
        if raw is None:
            return self.default
        where = r.where(elem) if self.blame_element else r.where(elem, self.name)
        return memory_kib(str(raw), elem.get(self.unit), where)

    def write(self, elem: Element, value: int | None) -> None:
        tree.set_attr(elem, self.name, None if value is None else str(value))
        tree.set_attr(elem, self.unit, None if value is None else "KiB")


def read_fields(r: Reader, elem: Element, fields: Iterable[Field]) -> Fields:
    """Each field's value keyed by its model name, read in declaration order."""
    return {f.key: f.read(r, elem) for f in fields}


def write_fields(elem: Element, fields: Iterable[Field], model: object) -> None:
    """Write each field from the same-named attribute of ``model`` (a Plan or a value type)."""
    for f in fields:
        f.write(elem, getattr(model, f.key))


@dataclass(frozen=True, slots=True, kw_only=True)
class Record(Generic[R]):
    """A repeated child element (``<vcpupin>``, ``<timer>``...) and the value type it maps to."""

    tag: str
    make: Callable[..., R]
    fields: tuple[Field, ...]

    def read(self, r: Reader, elem: Element, **fallback: object) -> R:
        """The value of one element; ``fallback`` fills fields the element leaves unset."""
        values = read_fields(r, elem, self.fields)
        values |= {k: v for k, v in fallback.items() if values[k] is None}
        return self.make(**values)

    def read_all(self, r: Reader, parent: Element | None) -> tuple[R, ...]:
        return () if parent is None else tuple(self.read(r, e) for e in tree.children(parent, self.tag))

    def write(self, elem: Element, value: R) -> None:
        write_fields(elem, self.fields, value)

    def write_all(self, parent: Element, values: Sequence[R]) -> None:
        """Make ``parent`` hold exactly these children, reusing existing ones in order."""
        for elem, value in zip(tree.replace_children(parent, self.tag, len(values)), values, strict=True):
            self.write(elem, value)
