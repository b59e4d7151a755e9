"""Parsing XML that comes from outside: no DTD, no entities, no network, bounded size.

Every SAML message and federation metadata document goes through :func:`parse` before
anything else looks at it, so an entity expansion ("billion laughs"), an external entity
(XXE) or a DOCTYPE never reaches the signature library.
"""

from __future__ import annotations

from lxml import etree

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


class UnsafeXml(ValueError):
    """The document is not well-formed, or declares a DTD or entities."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=True,
    )


def parse(data: bytes, max_bytes: int) -> etree._Element:
    """The root element of ``data``; UnsafeXml for an oversized, malformed or DTD-bearing one."""
    if len(data) > max_bytes:
        raise UnsafeXml(f"larger than {max_bytes} bytes")
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise UnsafeXml("a DTD or entity declaration")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml("not well-formed XML") from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXml("a DTD or entity declaration")
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise UnsafeXml("an entity reference")
    return root


def q(prefix: str, name: str) -> str:
    """Clark notation ``{namespace}name`` of a prefixed name."""
    return f"{{{NS[prefix]}}}{name}"
