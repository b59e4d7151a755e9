"""SAML metadata: reading an IdP's federation metadata, writing the bridge's SP metadata.

Entra publishes a federation metadata document per enterprise application (entity id,
sign-on URLs, signing certificates, the next one too during a rollover). It is given by an
administrator, so its own signature is not checked; it is parsed as safely as any message.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from bridge.sso.xml import NS, UnsafeXml, parse, q

MAX_METADATA_BYTES = 1 << 20
"""Largest federation metadata document read (Entra's is about 20 KB)."""

REDIRECT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


class MetadataError(ValueError):
    """The metadata (or a certificate) cannot be used."""


@dataclass(frozen=True)
class IdpMetadata:
    """What federation metadata tells about an IdP: its entity id, sign-on URL, certificates."""

    entity_id: str
    sso_url: str
    certificates: list[str]
    wants_signed_requests: bool = False
    """``WantAuthnRequestsSigned="true"`` on the IDPSSODescriptor."""


def read_idp_metadata(xml: str | bytes) -> IdpMetadata:
    """Entity id, HTTP-Redirect sign-on URL and signing certificates (PEM) of an IdP."""
    data = xml.encode() if isinstance(xml, str) else xml
    try:
        root = parse(data, MAX_METADATA_BYTES)
    except UnsafeXml as exc:
        raise MetadataError(f"federation metadata: {exc}") from exc
    descriptor = root if root.tag == q("md", "EntityDescriptor") else None
    if descriptor is None:
        descriptor = root.find("md:EntityDescriptor", NS)
    if descriptor is None or not descriptor.get("entityID"):
        raise MetadataError("federation metadata: no EntityDescriptor with an entityID")
    idp = descriptor.find("md:IDPSSODescriptor", NS)
    if idp is None:
        raise MetadataError("federation metadata: no IDPSSODescriptor")
    sso = [
        s.get("Location")
        for s in idp.findall("md:SingleSignOnService", NS)
        if s.get("Binding") == REDIRECT_BINDING and s.get("Location")
    ]
    if not sso:
        raise MetadataError("federation metadata: no HTTP-Redirect SingleSignOnService")
    certs: list[str] = []
    for key in idp.findall("md:KeyDescriptor", NS):
        if key.get("use") not in (None, "signing"):
            continue
        for node in key.iterfind(".//ds:X509Certificate", NS):
            pem = pem_of(node.text or "")
            if pem not in certs:
                certs.append(pem)
    if not certs:
        raise MetadataError("federation metadata: no signing certificate")
    wants = idp.get("WantAuthnRequestsSigned", "false").strip() in ("true", "1")
    return IdpMetadata(descriptor.get("entityID", ""), sso[0], certs[:2], wants)


def pem_of(text: str) -> str:
    """A certificate given as PEM or as bare base64 DER, as PEM; MetadataError otherwise."""
    body = re.sub(r"-----(BEGIN|END) CERTIFICATE-----|\s", "", text)
    try:
        der = base64.b64decode(body, validate=True)
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MetadataError("not an X.509 certificate (PEM or base64 DER)") from exc
    return cert.public_bytes(Encoding.PEM).decode()


def sp_metadata(
    entity_id: str,
    acs_url: str,
    signing_certificate: str | None = None,
    encryption_certificate: str | None = None,
    sign_requests: bool = False,
) -> bytes:
    """The bridge's SP metadata: entity id, the HTTP-POST ACS, signed assertions wanted,
    and our certificates: ``use="signing"`` (AuthnRequests) and ``use="encryption"`` (for
    the IdP to encrypt assertions to, with the algorithms we accept)."""
    md, ds = NS["md"], NS["ds"]
    root = etree.Element(
        q("md", "EntityDescriptor"), nsmap={"md": md, "ds": ds}, entityID=entity_id
    )
    sp = etree.SubElement(
        root,
        q("md", "SPSSODescriptor"),
        AuthnRequestsSigned="true" if sign_requests else "false",
        WantAssertionsSigned="true",
        protocolSupportEnumeration=NS["samlp"],
    )
    if signing_certificate:
        _key_descriptor(sp, "signing", signing_certificate)
    if encryption_certificate:
        descriptor = _key_descriptor(sp, "encryption", encryption_certificate)
        for algorithm in ENCRYPTION_METHODS:
            etree.SubElement(descriptor, q("md", "EncryptionMethod"), Algorithm=algorithm)
    fmt = etree.SubElement(sp, q("md", "NameIDFormat"))
    fmt.text = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    etree.SubElement(
        sp,
        q("md", "AssertionConsumerService"),
        Binding=POST_BINDING,
        Location=acs_url,
        index="0",
        isDefault="true",
    )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


ENCRYPTION_METHODS = (
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
)
"""What SP metadata offers an IdP to encrypt with (SAML metadata §2.4.1.1), best first."""


def _key_descriptor(parent: etree._Element, use: str, cert_pem: str) -> etree._Element:
    descriptor = etree.SubElement(parent, q("md", "KeyDescriptor"), use=use)
    info = etree.SubElement(descriptor, q("ds", "KeyInfo"))
    data = etree.SubElement(info, q("ds", "X509Data"))
    cert = etree.SubElement(data, q("ds", "X509Certificate"))
    cert.text = "".join(pem_of(cert_pem).strip().splitlines()[1:-1])
    return descriptor
