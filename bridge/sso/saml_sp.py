"""The bridge as SAML service provider: its URLs, SP-initiated AuthnRequests (HTTP-Redirect
binding, signed when the IdP wants it) and the record of the requests it issued, which a
response must answer once.

A signed request follows the SAML 2.0 bindings spec, §3.4.4.1: the signature is not in
the XML but over the query string itself, ``SAMLRequest=…&RelayState=…&SigAlg=…`` exactly
as the URL carries it (each value URL-encoded, RelayState left out when there is none),
with RSA-SHA256 and the IdP's SP signing key; it is appended as ``&Signature=…``.

Keys::

    {p}:sso:authn:{idp id}:{request id}   "1" until answered or AUTHN_REQUEST_TTL passes
"""

from __future__ import annotations

import base64
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import redis
from lxml import etree

from bridge.sso.idps import Idp
from bridge.sso.sp_keys import sign_rsa_sha256
from bridge.sso.xml import q

AUTHN_REQUEST_TTL = 600
"""Seconds an AuthnRequest may be answered in: the time a user may take to sign in."""

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
"""The SigAlg of signed requests (XML DSig's RSA-SHA256, RFC 6931 §2.3.2)."""


@dataclass(frozen=True)
class SpUrls:
    """Our side of one IdP's federation: entity id (Entra: Identifier), ACS (Reply URL)."""

    entity_id: str
    acs_url: str
    metadata_url: str


def sp_urls(base_url: str, idp: Idp | dict[str, Any]) -> SpUrls:
    """The bridge's URLs for ``idp`` under ``base_url`` (BRIDGE_PUBLIC_URL)."""
    base = f"{base_url.rstrip('/')}/sso/saml/{idp['name']}"
    entity_id = idp.get("sp_entity_id") or base
    return SpUrls(entity_id, f"{base}/acs", f"{base}/metadata")


class AuthnRequests:
    """Issues AuthnRequests and consumes their ids exactly once."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix

    def key(self, idp_id: str, request_id: str) -> str:
        """Where an issued AuthnRequest's id waits for its response."""
        return f"{self.prefix}:sso:authn:{idp_id}:{request_id}"

    def issue(self, idp: Idp, urls: SpUrls, relay_state: str | None) -> str:
        """The URL that sends the browser to the IdP with a new AuthnRequest."""
        request_id = "_" + secrets.token_hex(20)
        self.redis.set(self.key(idp.id, request_id), "1", ex=AUTHN_REQUEST_TTL)
        xml = authn_request(request_id, idp["sso_url"], urls)
        deflated = zlib.compress(xml)[2:-4]  # raw DEFLATE (RFC 1951), as the binding wants
        query = redirect_query(base64.b64encode(deflated).decode(), relay_state, idp)
        sep = "&" if "?" in idp["sso_url"] else "?"
        return f"{idp['sso_url']}{sep}{query}"

    def consume(self, idp_id: str, request_id: str) -> bool:
        """Whether ``request_id`` was issued for this IdP and not answered yet (it is now)."""
        return self.redis.getdel(self.key(idp_id, request_id)) is not None


def wants_signed_requests(idp: Idp) -> bool:
    """Whether AuthnRequests to ``idp`` are signed (its ``sign_requests`` setting, which
    federation metadata with ``WantAuthnRequestsSigned="true"`` turns on)."""
    return bool(idp.get("sign_requests")) and bool(idp.get("sp_signing_key"))


def redirect_query(saml_request: str, relay_state: str | None, idp: Idp) -> str:
    """The HTTP-Redirect query string, signed per bindings §3.4.4.1 when the IdP wants it:
    the signed octets are the URL-encoded ``SAMLRequest``, ``RelayState`` and ``SigAlg``
    parameters in that order, as sent."""
    parts = [f"SAMLRequest={quote_plus(saml_request)}"]
    if relay_state:
        parts.append(f"RelayState={quote_plus(relay_state)}")
    if not wants_signed_requests(idp):
        return "&".join(parts)
    parts.append(f"SigAlg={quote_plus(RSA_SHA256)}")
    signed = "&".join(parts)
    signature = sign_rsa_sha256(idp["sp_signing_key"], signed.encode("ascii"))
    return f"{signed}&Signature={quote_plus(base64.b64encode(signature).decode())}"


def authn_request(request_id: str, destination: str, urls: SpUrls) -> bytes:
    """A ``samlp:AuthnRequest`` asking for an HTTP-POST response at our ACS (with the
    HTTP-Redirect binding its signature, if any, is in the query string, not here)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    root = etree.Element(
        q("samlp", "AuthnRequest"),
        nsmap={"samlp": "urn:oasis:names:tc:SAML:2.0:protocol"},
        ID=request_id,
        Version="2.0",
        IssueInstant=now,
        Destination=destination,
        AssertionConsumerServiceURL=urls.acs_url,
        ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
    )
    issuer = etree.SubElement(
        root, q("saml", "Issuer"), nsmap={"saml": "urn:oasis:names:tc:SAML:2.0:assertion"}
    )
    issuer.text = urls.entity_id
    return bytes(etree.tostring(root))
