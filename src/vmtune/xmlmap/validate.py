"""Validate domain XML against libvirt's RelaxNG schemas before vmtune writes it (failure = vmtune bug)."""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

from vmtune.errors import SchemaError

__all__ = ["SYSTEM_SCHEMA", "default_schema", "validate_domain"]

SYSTEM_SCHEMA = Path("/usr/share/libvirt/schemas/domain.rng")


def default_schema() -> Path | None:
    """libvirt's installed schema; None when libvirt is not installed (then nothing is validated)."""
    return SYSTEM_SCHEMA if SYSTEM_SCHEMA.is_file() else None


@functools.lru_cache(maxsize=4)
def _relaxng(path: str) -> etree.RelaxNG:
    # The schema is trusted local data: <include href> must resolve relative to it, so a plain parser.
    return etree.RelaxNG(etree.parse(path))


def validate_domain(doc: etree._ElementTree, schema: Path | None = None, *, source: str = "") -> bool:
    """Raise SchemaError naming the first offending element; False when no schema is available."""
    path = schema or default_schema()
    if path is None:
        return False
    rng = _relaxng(str(path))
    if rng.validate(doc):
        return True
    errors = list(rng.error_log)
    first = errors[0] if errors else None
    where = f"line {first.line}" if first else "?"
    detail = first.message if first else "invalid"
    elem = ""
    if first is not None and first.path:
        elem = f" at {first.path}"
    prefix = f"{source}: " if source else ""
    raise SchemaError(
        f"{prefix}vmtune produced XML that libvirt's schema {path} rejects{elem} ({where}: {detail}); "
        "this is a vmtune bug, nothing was written"
    )
