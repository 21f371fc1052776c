"""Serialize a domain tree the way the file was written, and diff like with like.

lxml always writes attribute values in double quotes; libvirt (and most hand-edited domain files) use
single quotes. Writing every line back with other quotes would turn a three-line change into a whole-file
diff in the operator's git history, so ``serialize`` restores the file's dominant quote style, its XML
declaration and its trailing newline. Both sides of ``unified_diff`` go through the same serializer
(house rule 11), so the diff shows only what the plan changed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from lxml import etree

__all__ = ["Style", "detect_style", "serialize", "unified_diff"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Style:
    single_quotes: bool = True
    declaration: bytes | None = None
    """The input's own ``<?xml ...?>`` line, copied verbatim (lxml would requote and recase it)."""
    encoding: str = "UTF-8"
    final_newline: bool = True


def detect_style(raw: bytes, doc: etree._ElementTree | None = None) -> Style:
    head = raw[:16384]
    # count quote style on attribute assignments only (="...' vs ='...')
    singles = len(re.findall(rb"=\s*'", head))
    doubles = len(re.findall(rb'=\s*"', head))
    decl = re.match(rb"(?:\xef\xbb\xbf)?\s*(<\?xml\s[^>]*\?>)", raw)
    encoding = "UTF-8"
    if doc is not None and decl and doc.docinfo.encoding:
        encoding = str(doc.docinfo.encoding)
    return Style(
        single_quotes=singles >= doubles if (singles or doubles) else True,
        declaration=decl.group(1) if decl else None,
        encoding=encoding,
        final_newline=raw.endswith(b"\n"),
    )


# Tokens lxml emits: comments, CDATA, PIs and the doctype are copied verbatim; start tags get requoted.
_TOKEN = re.compile(
    rb"(<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)"
    rb"|(<[A-Za-z_][^>\"]*\"[^>]*>)",  # only start tags with an attribute value
    re.S,
)
_VALUE = re.compile(rb'"([^"]*)"')


def _requote_value(match: re.Match[bytes]) -> bytes:
    # lxml escapes '"' as &quot; and leaves "'" raw; swap both for single-quoted values
    return b"'" + match.group(1).replace(b"'", b"&apos;").replace(b"&quot;", b'"') + b"'"


def _requote(match: re.Match[bytes]) -> bytes:
    tag = match.group(2)
    if tag is None:
        return match.group(0)
    return _VALUE.sub(_requote_value, tag)


def serialize(doc: etree._ElementTree, style: Style | None = None) -> bytes:
    style = style or Style()
    root = doc.getroot()
    enc = style.encoding

    def dump(node: etree._Element) -> bytes:
        out = etree.tostring(node, encoding=enc, xml_declaration=False, with_tail=False)
        return out if isinstance(out, bytes) else out.encode(enc)

    # Top-level comments/PIs one per line: libxml2 drops the prolog's whitespace, the file had newlines.
    parts = [style.declaration] if style.declaration else []
    doctype = str(getattr(doc.docinfo, "doctype", "") or "")  # lxml-stubs lack DocInfo.doctype
    if doctype:
        parts.append(doctype.encode(enc))
    parts += [dump(n) for n in reversed(list(root.itersiblings(preceding=True)))]
    parts.append(dump(root))
    parts += [dump(n) for n in root.itersiblings()]
    body = b"\n".join(parts)
    if style.single_quotes and b'"' in body:
        body = _TOKEN.sub(_requote, body)
    if style.final_newline and not body.endswith(b"\n"):
        body += b"\n"
    return body


def unified_diff(before: bytes, after: bytes, *, name: str, context: int = 3) -> str:
    """A ``diff -u`` of two serializations; empty when they are equal."""
    if before == after:
        return ""
    old = before.decode("utf-8", "replace").splitlines(keepends=True)
    new = after.decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(old, new, fromfile=f"a/{name}", tofile=f"b/{name}", n=context)
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
