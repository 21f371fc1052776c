"""Where in its file a finding's XPath points: ``(line, column)`` for SARIF regions and ``file:line`` output.

lxml only knows ``sourceline``, and libxml2 records it when the start tag is *finished*: an element written as
``<emulatorpin\\n  cpuset='3'/>`` reports the ``cpuset`` line, not the ``<emulatorpin`` one, and there is no
column at all. So the position comes from the raw bytes instead: a scan of the start tags in document order
(skipping comments, CDATA, processing instructions and the DOCTYPE, the only places a ``<name`` can hide
that is not an element: ``<`` is illegal in attribute values and text) pairs the n-th start tag with the n-th
element of the tree. The pairing checks itself (same tag name, not after ``sourceline``); when it does not
hold (UTF-16 input, something this scan misreads) the answer falls back to lxml's ``sourceline`` and no
column, never to a wrong column.

An XPath that names nothing (VT101 on a guest without ``<cputune>``) points at its nearest existing ancestor
(``/domain``): the element that would contain the fix. An XPath lxml rejects (a predicate quoting a value
that itself holds a quote, a namespace prefix it doesn't know) has no position.

A host CPU list (``CPUs 1,9``: the cross-guest rules VT103-VT105 and VT107) names no element, but every such
list is a part of the guest's vCPU CPUs (``GuestSpec.vcpu_cpus``: the ``<vcpupin>``s, else
``<vcpu cpuset>``), so it points at the first pin that holds one of those CPUs: GitHub code scanning
(sarif-sdk rule GH1003) places a result without ``region.startLine`` on no line at all. No such pin, or an
unknown location form: no position.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from lxml import etree

from vmtune.cpuset import CpuSet
from vmtune.errors import VmtuneError
from vmtune.xmlmap.safe import parse_xml

__all__ = ["Position", "SourceMap", "xpath_steps"]

# Things that start with "<" but are not a start tag; each is skipped whole (DOCTYPE without an internal
# subset only: parse_xml refuses entity declarations, and an internal subset without them is harmless).
_CPUS = "CPUs "
"""How the rules write a host CPU list location (``f"CPUs {cpus}"``)."""
_TOKEN = re.compile(
    rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>|<([A-Za-z_][\w.:-]*)",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """1-based line; 1-based column in Unicode code points (SARIF ``columnKind: unicodeCodePoints``)."""

    line: int
    column: int | None = None


def xpath_steps(xpath: str) -> list[str]:
    """``/domain/devices/disk[@file='/a/b']/@x`` -> ``['domain', "devices", "disk[@file='/a/b']", '@x']``:
    split on ``/`` outside predicates and quotes (a disk path in a predicate holds slashes)."""
    steps: list[str] = []
    current: list[str] = []
    depth = 0
    quote = ""
    for ch in xpath:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "/" and depth == 0:
            if current:
                steps.append("".join(current))
            current = []
            continue
        current.append(ch)
    if current:
        steps.append("".join(current))
    return steps


class SourceMap:
    """One parsed XML document and its bytes; answers :meth:`locate` for XPaths into it.

    The start-tag scan runs once, on the first question (most checked files have no findings at all).
    """

    __slots__ = ("_lfs", "_newlines", "_raw", "_starts", "_tree")

    def __init__(self, tree: etree._ElementTree, raw: bytes) -> None:
        self._tree = tree
        self._raw = raw
        self._starts: dict[etree._Element, tuple[int, bytes]] | None = None
        self._newlines: list[int] = []
        self._lfs: list[int] = []

    @classmethod
    def parse(cls, raw: bytes, *, source: str, root: str | None = None) -> SourceMap:
        """Parse with :func:`vmtune.xmlmap.safe.parse_xml` (same errors) and keep the bytes for columns."""
        return cls(parse_xml(raw, source=source, root=root), raw)

    @property
    def tree(self) -> etree._ElementTree:
        return self._tree

    def locate(self, xpath: str) -> Position | None:
        """The element ``xpath`` names (an attribute step: its element, at the attribute), else its nearest
        existing ancestor; a ``CPUs LIST`` location: the first vCPU pin holding one of those CPUs; None for
        anything else or an XPath lxml rejects."""
        if xpath.startswith(_CPUS):
            return self._locate_cpus(xpath[len(_CPUS) :])
        if not xpath.startswith("/"):
            return None
        steps = xpath_steps(xpath)
        attr = steps[-1][1:] if steps and steps[-1].startswith("@") else None
        if attr is not None:
            steps = steps[:-1]
        while steps:
            try:
                found = self._tree.xpath("/" + "/".join(steps))
            except (etree.XPathError, ValueError, TypeError):
                return None  # lxml refused the expression: no guessing at a shorter one
            elements = [e for e in found if isinstance(e, etree._Element)] if isinstance(found, list) else []
            if elements:
                return self._position(elements[0], attr)
            steps = steps[:-1]
            attr = None  # the attribute belongs to the missing element, not to this ancestor
        return None

    def _locate_cpus(self, text: str) -> Position | None:
        try:
            cpus = CpuSet.parse(text)
        except (VmtuneError, ValueError):
            return None
        root = self._tree.getroot()
        # the same order GuestSpec.vcpu_cpus reads them in: the pins, else <vcpu cpuset>
        for el in [*root.iterfind("cputune/vcpupin"), *root.iterfind("vcpu")]:
            try:
                pinned = CpuSet.parse(str(el.get("cpuset") or ""))
            except (VmtuneError, ValueError):
                continue
            if not pinned.isdisjoint(cpus):
                return self._position(el, None)
        return None

    def _position(self, element: etree._Element, attr: str | None) -> Position | None:
        # lxml-stubs type sourceline as "...": it is an int, or None for a node built in memory
        sourceline: int | None = getattr(element, "sourceline", None)
        fallback = Position(line=sourceline) if sourceline else None
        hit = self._start_tags().get(element)
        if hit is None:
            return fallback
        offset, name = hit
        localname = etree.QName(element).localname.encode()
        wanted = element.prefix.encode() + b":" + localname if element.prefix else localname
        line = bisect_right(self._newlines, offset) + 1
        # libxml2 counts only LFs (a lone CR, which editors and SARIF count, does not bump sourceline)
        if name != wanted or (sourceline and bisect_right(self._lfs, offset) + 1 > sourceline):
            return fallback  # the scan and libxml2 disagree: trust libxml2's line, give no column
        if attr is not None:
            # the attribute sits inside this start tag, which ends before the next "<"
            end = self._raw.find(b"<", offset + 1)
            span = self._raw[offset : end if end >= 0 else len(self._raw)]
            found = re.search(rb"\s" + re.escape(attr.encode()) + rb"\s*=", span)
            if found is not None:
                offset += found.start() + 1
                line = bisect_right(self._newlines, offset) + 1
        return Position(line=line, column=self._column(offset, line))

    def _column(self, offset: int, line: int) -> int | None:
        start = self._newlines[line - 2] + 1 if line > 1 else 0
        try:
            return len(self._raw[start:offset].decode("utf-8")) + 1
        except UnicodeDecodeError:
            return None  # a legacy encoding: the line is still right, a code-point column would not be

    def _start_tags(self) -> dict[etree._Element, tuple[int, bytes]]:
        """element -> (byte offset of its "<", the tag name as written), by pairing in document order.

        The dict holds the element proxies, so lxml hands out these same objects to later XPath queries
        (it reuses a node's live proxy) and the lookup by identity hits."""
        if self._starts is not None:
            return self._starts
        raw = self._raw
        # the last byte of each line break: XML (and libxml2's sourceline) counts CRLF and a lone CR as one
        self._newlines = [m.end() - 1 for m in re.finditer(rb"\r\n?|\n", raw)]
        self._lfs = [m.start() for m in re.finditer(rb"\n", raw)]
        tags = [(m.start(), m.group(1)) for m in _TOKEN.finditer(raw) if m.group(1) is not None]
        elements = list(self._tree.getroot().iter(etree.Element))
        self._starts = {}
        if len(tags) == len(elements):  # anything else means the scan misread the file: no columns
            self._starts = dict(zip(elements, tags, strict=True))
        return self._starts
