"""Validate domain XML against libvirt's RelaxNG schemas before vmtune writes it.

vmtune blames itself (SchemaError, exit 1) only for an error its output has and its input did not: XML
saved on a newer libvirt often fails an older host's schema, and rewriting it offline is a normal use.
libxml2 reports only the first failure inside an ``<interleave>`` (the domain's children are one), so two
invalid documents can report different first errors for the same cause; when the error sets differ, the
elements the input's errors point at are taken out of both documents until the input validates, and what
is left of the output must then validate too.
"""

from __future__ import annotations

import copy
import functools
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from lxml import etree

from vmtune.errors import SchemaError
from vmtune.xmlmap.order import rank
from vmtune.xmlmap.safe import parse_xml

__all__ = [
    "SYSTEM_SCHEMA",
    "SchemaIssue",
    "default_schema",
    "schema_issues",
    "validate_domain",
    "validate_output",
]

SYSTEM_SCHEMA = Path("/usr/share/libvirt/schemas/domain.rng")
_INTERLEAVE_EXTRA = re.compile(r"Extra element (\S+) in interleave")
_STRIP_ROUNDS = 16
"""How many times invalid input elements are taken out before the comparison gives up (each round
removes at least one element; real inputs need one or two)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaIssue:
    """One RelaxNG error: the element's XPath (libxml2's, may be empty) and the message."""

    xpath: str
    message: str
    line: int

    @property
    def key(self) -> tuple[str, str]:
        """What makes two errors the same error in two versions of a document (lines move)."""
        return self.xpath, self.message


def default_schema() -> Path | None:
    """libvirt's installed schema; None when libvirt is not installed (then nothing is validated)."""
    return SYSTEM_SCHEMA if SYSTEM_SCHEMA.is_file() else None


@functools.lru_cache(maxsize=4)
def _relaxng(path: str) -> etree.RelaxNG:
    # The schema is trusted local data: <include href> must resolve relative to it, so a plain parser.
    return etree.RelaxNG(etree.parse(path))


def schema_issues(doc: etree._ElementTree, schema: Path) -> tuple[SchemaIssue, ...]:
    """Every error libxml2 reports for ``doc`` (empty when it validates).

    libxml2 matches an ``<interleave>`` greedily, so some valid orders of the domain's children fail
    (``<memory>`` before ``<uuid>`` with ``<bootloader>`` and ``<vcpu>``: "Extra element uuid in
    interleave"); libvirt's parser takes any order and stores libvirt's own. A document whose children in
    that order validate counts as valid.
    """
    rng = _relaxng(str(schema))
    if rng.validate(doc):
        return ()
    first = _errors(rng)
    if any(i.message.endswith(" in interleave") for i in first) and rng.validate(_canonical(doc)):
        return ()
    return first


def _canonical(doc: etree._ElementTree) -> etree._ElementTree:
    """A copy with the root's children in libvirt's order (unknown ones, and comments, keep their place
    relative to the element before them)."""
    root = copy.deepcopy(doc.getroot())
    keyed: list[tuple[int, int, etree._Element]] = []
    last = -1
    for i, child in enumerate(root):
        tag = child.tag if isinstance(child.tag, str) else ""
        known = rank("domain", tag)
        last = known if known is not None else last
        keyed.append((last, i, child))
    for _, _, child in sorted(keyed, key=lambda k: (k[0], k[1])):
        root.append(child)  # append moves the element: the result is the sorted order
    return etree.ElementTree(root)


def _errors(rng: etree.RelaxNG) -> tuple[SchemaIssue, ...]:
    logged = list(rng.error_log)
    if not logged:
        return (SchemaIssue(xpath="", message="invalid", line=0),)
    out: list[SchemaIssue] = []
    for i, err in enumerate(logged):
        xpath = err.path or ""
        extra = _INTERLEAVE_EXTRA.fullmatch(err.message)
        if not xpath and extra is not None:
            # libxml2 gives an interleave error no path; the next error names the element or its parent
            near = next((e.path for e in logged[i + 1 :] if e.path), None) or ""
            name = extra.group(1)
            xpath = near if re.search(rf"/{re.escape(name)}(\[\d+\])?$", near) else f"{near}/{name}"
        out.append(SchemaIssue(xpath=xpath, message=err.message, line=err.line))
    return tuple(out)


def _describe(issues: tuple[SchemaIssue, ...]) -> str:
    """The first error and the element it is about."""
    first = issues[0]
    at = f" at {first.xpath}" if first.xpath else ""
    return f"{at} (line {first.line}: {first.message})"


def validate_domain(doc: etree._ElementTree, schema: Path | None = None, *, source: str = "") -> bool:
    """Raise SchemaError naming the first offending element; False when no schema is available."""
    path = schema or default_schema()
    if path is None:
        return False
    issues = schema_issues(doc, path)
    if not issues:
        return True
    _blame(issues, path, source)
    return False  # unreachable: _blame raises


def _blame(issues: tuple[SchemaIssue, ...], schema: Path, source: str) -> NoReturn:
    prefix = f"{source}: " if source else ""
    raise SchemaError(
        f"{prefix}vmtune produced XML that libvirt's schema {schema} rejects{_describe(issues)}; "
        "this is a vmtune bug, nothing was written"
    )


def _stderr(message: str) -> None:
    print(f"vmtune: warning: {message}", file=sys.stderr)


def validate_output(
    before: bytes,
    after: bytes,
    *,
    schema: Path | None = None,
    source: str = "",
    warn: Callable[[str], None] = _stderr,
) -> bool:
    """Check the document vmtune wrote (``after``) against the one it read (``before``).

    Raises SchemaError when ``after`` has a schema error ``before`` did not have. When ``before`` already
    fails, ``warn`` gets one line naming ``source`` and its first error, and nothing is raised for what it
    shares with ``after``. False when no schema is installed (nothing checked).
    """
    path = schema or default_schema()
    if path is None:
        return False
    out_doc = parse_xml(after, source=source, root="domain")
    out_issues = schema_issues(out_doc, path)
    if not out_issues:
        return True
    in_doc = parse_xml(before, source=source, root="domain")
    in_issues = schema_issues(in_doc, path)
    if not in_issues:
        validate_domain(out_doc, path, source=source)
    if not _compare_stripped(in_doc, out_doc, in_issues, path, source):
        # nothing left to strip: the error sets are all there is to compare
        inherited = {i.key for i in in_issues}
        new = tuple(i for i in out_issues if i.key not in inherited)
        if new:
            _blame(new, path, source)
    warn(
        f"{source}: the input already fails libvirt's schema {path}{_describe(in_issues)}; "
        "written anyway (vmtune added no schema error, but libvirt may refuse the file as it was)"
    )
    return True


def _compare_stripped(
    in_doc: etree._ElementTree,
    out_doc: etree._ElementTree,
    in_issues: tuple[SchemaIssue, ...],
    schema: Path,
    source: str,
) -> bool:
    """Take the elements the input's errors name out of both documents until the input validates; then
    an error left in the output is vmtune's (raised). False when the errors name nothing removable."""
    for _ in range(_STRIP_ROUNDS):
        paths = [i.xpath for i in in_issues if i.xpath]
        if not _remove(in_doc, paths):
            return False
        _remove(out_doc, paths)
        in_issues = schema_issues(in_doc, schema)
        if not in_issues:
            validate_domain(out_doc, schema, source=source)
            return True
    return False


def _remove(doc: etree._ElementTree, xpaths: list[str]) -> bool:
    """Remove the elements at libxml2's ``xpaths`` (``/domain/test:runstate[1]``, ``/domain/devices``),
    all found before any is removed so positions stay right; False when none was found."""
    root = doc.getroot()
    namespaces = {k: v for el in root.iter() for k, v in el.nsmap.items() if k}
    found: list[etree._Element] = []
    for xpath in xpaths:
        try:
            hits = doc.xpath(xpath, namespaces=namespaces)
        except etree.XPathError:
            continue
        if isinstance(hits, list):
            found.extend(h for h in hits if isinstance(h, etree._Element))
    removed = False
    for elem in found:
        parent = elem.getparent()
        if parent is not None:  # the root itself is never removed
            parent.remove(elem)
            removed = True
    return removed
