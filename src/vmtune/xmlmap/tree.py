"""Indentation-aware element surgery: insert in canonical order, remove, find-or-create.

vmtune never re-indents a file. A new element copies the whitespace its future siblings already use (or
the parent's indent plus the document's indent unit, read from the root's first child); removing an
element hands its tail to the previous node so the neighbours keep their layout. A file written on one
line (no newline before the root's first child) stays on one line.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from vmtune.xmlmap.order import rank

__all__ = [
    "add",
    "attr",
    "child",
    "children",
    "drop_if_empty",
    "ensure",
    "is_element",
    "remove",
    "replace_children",
    "set_attr",
    "toggle",
]

Element = etree._Element


def is_element(node: object) -> bool:
    """True for real elements (lxml also yields comments, PIs and entities as children)."""
    return isinstance(getattr(node, "tag", None), str)


def children(parent: Element, tag: str) -> list[Element]:
    """Direct children named ``tag`` in the null namespace (libvirt's elements)."""
    # findall with a bare name matches only null-namespace elements and skips comments/PIs (in C)
    return parent.findall(tag)


def child(parent: Element, tag: str) -> Element | None:
    return parent.find(tag)


def attr(elem: Element, name: str) -> str | None:
    value = elem.get(name)
    return None if value is None else str(value)


def set_attr(elem: Element, name: str, value: str | None) -> None:
    """Set or (value None) drop an attribute; existing attributes keep their position."""
    if value is None:
        if name in elem.attrib:
            del elem.attrib[name]
    elif elem.get(name) != value:
        elem.set(name, value)


def _ws_tail(text: str | None) -> str | None:
    """The indent after the last newline of a whitespace run, or None when there is no newline."""
    if text is None or "\n" not in text or text.strip():
        return None
    return text.rsplit("\n", 1)[1]


def _indent_of(elem: Element) -> str | None:
    parent = elem.getparent()
    if parent is None:
        return ""
    prev = elem.getprevious()
    return _ws_tail(prev.tail if prev is not None else parent.text)


def _unit(elem: Element) -> str | None:
    root = elem.getroottree().getroot()
    return _ws_tail(root.text) if len(root) else "  "


def _child_indent(parent: Element) -> str | None:
    if len(parent):
        return _ws_tail(parent.text)
    own, unit = _indent_of(parent), _unit(parent)
    return None if own is None or unit is None else own + unit


def _position(parent: Element, tag: str) -> int:
    my_rank = rank(str(parent.tag), tag)
    if my_rank is None:
        return len(parent)
    after: int | None = None
    first_later: int | None = None
    for i, node in enumerate(parent):
        if not is_element(node):
            continue
        r = rank(str(parent.tag), str(node.tag))
        if r is None:
            continue
        if r <= my_rank:
            after = i + 1
        elif first_later is None:
            first_later = i
    if after is not None:
        return after
    return first_later if first_later is not None else len(parent)


def add(parent: Element, tag: str, attrs: dict[str, str] | None = None, text: str | None = None) -> Element:
    """Create ``<tag attrs>text</tag>`` and insert it where libvirt would print it."""
    new = etree.Element(tag)
    for key, value in (attrs or {}).items():
        new.set(key, value)
    new.text = text
    pos = _position(parent, tag)
    indent = _child_indent(parent)
    if indent is None:
        parent.insert(pos, new)
        return new
    newline = "\n" + indent
    if len(parent) == 0:
        own = _indent_of(parent)
        parent.text = newline
        new.tail = "\n" + (own or "")
    elif pos == 0:
        new.tail = newline
    else:
        prev = parent[pos - 1]
        new.tail = prev.tail
        prev.tail = newline
    parent.insert(pos, new)
    return new


def ensure(parent: Element, tag: str, attrs: dict[str, str] | None = None) -> Element:
    """The first ``<tag>`` child, created (with ``attrs``) if missing."""
    found = child(parent, tag)
    return found if found is not None else add(parent, tag, attrs)


def toggle(parent: Element, tag: str, wanted: bool, attrs: dict[str, str] | None = None) -> Element | None:
    """Make ``<tag>`` present (the first one, created with ``attrs`` if missing) or absent (None)."""
    found = child(parent, tag)
    if wanted:
        return found if found is not None else add(parent, tag, attrs)
    if found is not None:
        remove(found)
    return None


def remove(elem: Element) -> None:
    """Remove ``elem`` and give its tail to whatever preceded it, keeping the neighbours' layout."""
    parent = elem.getparent()
    if parent is None:
        return
    prev = elem.getprevious()
    if prev is not None:
        prev.tail = elem.tail
    else:
        parent.text = elem.tail
    parent.remove(elem)
    if len(parent) == 0 and parent.text is not None and not parent.text.strip():
        parent.text = None


def replace_children(parent: Element, tag: str, keep: int) -> Iterator[Element]:
    """Yield exactly ``keep`` ``<tag>`` children: existing ones in order, then new ones; extras removed.

    After the first, each new child goes straight after the previous one with the indent worked out once:
    searching the canonical position (or counting lxml's children, a linked list) for every one of
    thousands of ``<vcpupin>`` would make writing quadratic.
    """
    existing = children(parent, tag)
    for extra in existing[keep:]:
        remove(extra)
    yield from existing[:keep]
    if keep <= len(existing):
        return
    last = add(parent, tag)
    yield last
    indent = _child_indent(parent)
    for _ in range(keep - len(existing) - 1):
        last = _add_after(last, tag, indent)
        yield last


def _add_after(prev: Element, tag: str, indent: str | None) -> Element:
    """A new ``<tag>`` right after ``prev``, laid out as ``add`` lays out a child inserted there."""
    new = etree.Element(tag)
    tail = prev.tail
    prev.addnext(new)
    # set after addnext: lxml before 5 moves tails along with the sibling it inserts
    if indent is not None:
        new.tail = tail
        prev.tail = "\n" + indent
    return new


def drop_if_empty(elem: Element) -> None:
    """Remove a section left with no children, attributes or text (comments inside keep it), as libvirt's
    formatter drops an empty ``<cputune/>``."""
    if len(elem) == 0 and not elem.attrib and not (elem.text or "").strip():
        remove(elem)
