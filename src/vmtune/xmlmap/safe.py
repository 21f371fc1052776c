"""Safe XML parsing: no network, no DTD, no entity expansion, bounded size; errors name file:line:col."""

from __future__ import annotations

from lxml import etree

from vmtune.errors import InputError

__all__ = ["parse_xml"]

MAX_BYTES = 64 * 1024 * 1024


def _parser() -> etree.XMLParser:
    # resolve_entities=False + no_network + load_dtd=False close XXE; huge_tree=False keeps libxml2's
    # depth/size limits that stop billion-laughs style blowups.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=False,
    )


def parse_xml(data: bytes | str, *, source: str, root: str | None = None) -> etree._ElementTree:
    """Parse ``data``; raise InputError naming ``source`` with line and column on any problem.

    ``root`` checks the root element's tag (``domain``, ``capabilities``, ``domainCapabilities``).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        raise InputError(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB, refusing to parse")
    if b"<!ENTITY" in raw:
        # Entity declarations have no place in libvirt XML; refusing them outright is simpler and safer
        # than reasoning about which expansions libxml2 performs.
        line = raw[: raw.index(b"<!ENTITY")].count(b"\n") + 1
        raise InputError(f"{source}:{line}: XML entity declarations are not allowed")
    try:
        tree = etree.ElementTree(etree.fromstring(raw, _parser()))
    except etree.XMLSyntaxError as err:
        line, col = err.position if err.position else (0, 0)
        msg = str(err.msg or err).split(", line ")[0]
        raise InputError(f"{source}:{line}:{col}: malformed XML: {msg}") from None
    except ValueError as err:
        raise InputError(f"{source}: cannot parse XML: {err}") from None
    if root is not None:
        tag = tree.getroot().tag
        if not isinstance(tag, str) or etree.QName(tag).localname != root:
            raise InputError(f"{source}: root element is <{tag}>, expected <{root}>")
    return tree
