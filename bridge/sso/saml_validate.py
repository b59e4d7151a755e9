"""Validating a SAML 2.0 Response posted to the ACS: the security of sign-in rests here.

The order matters. Before the XML reaches signxml: a size cap, strict base64, a parser
that refuses DTDs and entities, and a look at every ``ds:Transform`` (only the enveloped
signature and exclusive/inclusive canonicalization, so no XSLT or XPath runs). Then:
exactly one assertion, a direct child of the Response; its signature (or the Response's)
verified by signxml against the IdP's pinned certificate(s), never one carried in the
message; and from then on only the element signxml returns as signed is read, so an
unsigned copy elsewhere in the document (signature wrapping) is never looked at. Last,
the conditions: issuer, audience, recipient, destination, validity window with a clock
skew, the AuthnRequest answered (once), and the assertion id not seen before.

An ``EncryptedAssertion`` (Entra's token encryption) is decrypted with the IdP's SP
encryption key (:mod:`bridge.sso.xmlenc`) and the assertion it holds put in its place;
from then on it is checked exactly like a plain one. When the Response is signed, that
signature (over the ciphertext) is verified first. When only the assertion inside is
signed, every refusal until that signature is verified is answered as ``decrypt`` (the
log keeps the real reason), so a tampered ciphertext learns nothing from the answer.

Each failure raises :class:`Rejected` with a short ``reason`` code (README: "What each
rejection means") that is logged and shown, never the message's content.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from lxml import etree
from signxml.algorithms import SignatureMethod
from signxml.exceptions import InvalidDigest
from signxml.verifier import SignatureConfiguration, XMLVerifier

from bridge.sso.idps import Idp
from bridge.sso.saml_sp import AuthnRequests, SpUrls
from bridge.sso.sp_keys import SpKeyError, load_private_key
from bridge.sso.xml import NS, UnsafeXml, parse, q
from bridge.sso.xmlenc import DecryptionError, decrypt_assertion

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 256 * 1024
"""Largest SAMLResponse accepted, base64 as posted (Entra's are 5-15 KB, with many group
claims up to about 60 KB); checked before it is decoded or parsed."""

ALLOWED_TRANSFORMS = frozenset(
    {
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/2006/12/xml-c14n11",
    }
)
"""The only transforms a signature may name: enveloped signature and canonicalization
without comments. XSLT, XPath, base64 and the ``#WithComments`` variants are refused."""

ALLOWED_C14N = ALLOWED_TRANSFORMS - {"http://www.w3.org/2000/09/xmldsig#enveloped-signature"}

SIGNATURE_METHODS = frozenset(
    m
    for m in SignatureMethod
    if m.name.startswith(("RSA_SHA", "ECDSA_SHA", "SHA")) and "SHA1" not in m.name
)
"""Public-key signatures with SHA-2 or SHA-3 only: no SHA-1 (Entra's SHA-1 option is
refused), no HMAC (a key shared with no one), no DSA. signxml's default also refuses
SHA-1 digests."""

UNREADABLE = "the encrypted assertion cannot be decrypted or verified"
"""The one answer to an encrypted assertion refused before its signature was verified."""

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"


class Rejected(Exception):
    """A response the bridge refuses; ``reason`` is a short code, ``status`` the HTTP answer."""

    def __init__(self, reason: str, detail: str, status: int = 403) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


@dataclass
class Identity:
    """What a validated assertion says about the user (read from the signed element only)."""

    name_id: str
    attributes: dict[str, list[str]] = field(default_factory=dict)
    assertion_id: str = ""
    in_response_to: str | None = None
    not_on_or_after: datetime | None = None

    def first(self, *names: str) -> str | None:
        """The first value of the first of ``names`` the assertion carries."""
        for name in names:
            values = self.attributes.get(name)
            if values and values[0]:
                return values[0]
        return None


@dataclass
class Validator:
    """Validates responses for one IdP at our URLs; ``now`` is injectable for tests."""

    idp: Idp
    urls: SpUrls
    requests: AuthnRequests
    redis: redis.Redis
    prefix: str

    def validate(self, posted: str, now: datetime | None = None) -> Identity:
        """The identity of a valid SAMLResponse (base64, as posted); Rejected otherwise."""
        now = now or datetime.now(UTC)
        root = self._parse(posted)
        encrypted = self._encrypted(root)
        if encrypted is not None:
            envelope, signed = self._verify_encrypted(root)
        elif self.idp.get("require_encryption"):
            raise Rejected("unencrypted", "this IdP must encrypt its assertions")
        else:
            envelope, signed = self._verify(root, self._structure(root))
        identity = self._check(envelope, signed, now)
        self._answer_once(identity, now)
        return identity

    # --- before the signature library ------------------------------------------------------
    def _parse(self, posted: str) -> etree._Element:
        if len(posted) > MAX_RESPONSE_BYTES:
            raise Rejected("too_large", f"SAMLResponse over {MAX_RESPONSE_BYTES} bytes", 413)
        try:
            data = base64.b64decode("".join(posted.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Rejected("malformed", "SAMLResponse is not base64", 400) from exc
        try:
            root = parse(data, MAX_RESPONSE_BYTES)
        except UnsafeXml as exc:
            reason = "dtd" if "DTD" in str(exc) or "entity" in str(exc) else "malformed"
            raise Rejected(reason, str(exc), 400) from exc
        if root.tag != q("samlp", "Response"):
            raise Rejected("malformed", "the document is not a samlp:Response", 400)
        return root

    def _structure(self, root: etree._Element) -> etree._Element:
        """The one assertion, after checking transforms and where signatures and assertions sit."""
        if any(True for _ in root.iter(q("saml", "EncryptedAssertion"))):
            raise Rejected("assertion_count", "an encrypted assertion beside a plain one")
        assertions = list(root.iter(q("saml", "Assertion")))
        if len(assertions) != 1:
            raise Rejected("assertion_count", f"{len(assertions)} assertions, expected exactly 1")
        assertion = assertions[0]
        if assertion.getparent() is not root:
            raise Rejected("wrapping", "the assertion is not a child of the Response")
        self._screen(root, assertion)
        if assertion.get("Version") != "2.0":
            raise Rejected("malformed", "not a SAML 2.0 response", 400)
        return assertion

    def _screen(self, root: etree._Element, assertion: etree._Element | None) -> None:
        """Transforms, IDs, signature places, version and status: what is checked before
        any signature is verified (``assertion`` None: it is still encrypted)."""
        for transform in root.iter(q("ds", "Transform")):
            if transform.get("Algorithm") not in ALLOWED_TRANSFORMS:
                raise Rejected("transform", "a signature names a transform that is not allowed")
        for method in root.iter(q("ds", "CanonicalizationMethod")):
            if method.get("Algorithm") not in ALLOWED_C14N:
                raise Rejected("transform", "a signature names a canonicalization not allowed")
        ids = [node.get("ID") for node in root.iter() if node.get("ID") is not None]
        if len(ids) != len(set(ids)):
            raise Rejected("wrapping", "two elements share an ID")
        for signature in root.iter(q("ds", "Signature")):
            if signature.getparent() not in (root, assertion):
                raise Rejected("wrapping", "a signature outside the Response and its assertion")
        if root.get("Version") != "2.0":
            raise Rejected("malformed", "not a SAML 2.0 response", 400)
        status = root.find("samlp:Status/samlp:StatusCode", NS)
        if status is None or status.get("Value") != SUCCESS:
            raise Rejected("status", "the IdP did not answer with Success")

    # --- encrypted assertions --------------------------------------------------------------
    def _encrypted(self, root: etree._Element) -> etree._Element | None:
        """The Response's one EncryptedAssertion (a direct child), or None."""
        found = list(root.iter(q("saml", "EncryptedAssertion")))
        if not found:
            return None
        if len(found) != 1:
            raise Rejected("assertion_count", f"{len(found)} encrypted assertions, expected 1")
        if found[0].getparent() is not root:
            raise Rejected("wrapping", "the encrypted assertion is not a child of the Response")
        if not self.idp.get("sp_encryption_key"):
            raise Rejected("encrypted", "an encrypted assertion, and no SP encryption key is set")
        return found[0]

    def _verify_encrypted(self, root: etree._Element) -> tuple[etree._Element, etree._Element]:
        """As :meth:`_verify`, for a Response whose assertion is encrypted."""
        if root.find("ds:Signature", NS) is not None:
            # the Response's signature covers the ciphertext: check it before decrypting
            self._screen(root, None)
            signed = self._signed(root, root)
            if signed.tag != q("samlp", "Response"):
                raise Rejected("wrapping", "the response's signature covers another element")
            assertion = self._decrypt_in_place(signed)
            if self._structure(signed) is not assertion:
                raise Rejected("assertion_count", "the signed response has no single assertion")
            if assertion.find("ds:Signature", NS) is not None:
                assertion = self._signed(assertion, assertion)
            return signed, assertion
        try:
            plain = copy.deepcopy(root)
            assertion = self._decrypt_in_place(plain)
            return self._verify(plain, self._structure(plain))
        except Rejected as exc:
            if exc.reason == "weak_encryption":
                raise
            log.info("encrypted assertion refused before its signature held: %s", exc.reason)
            raise Rejected("decrypt", UNREADABLE) from exc

    def _decrypt_in_place(self, root: etree._Element) -> etree._Element:
        """Replace ``root``'s EncryptedAssertion with the assertion it holds; that assertion."""
        encrypted = root.find("saml:EncryptedAssertion", NS)
        if encrypted is None:
            raise Rejected("assertion_count", "no encrypted assertion under the Response")
        try:
            key = load_private_key(self.idp["sp_encryption_key"])
        except SpKeyError as exc:
            raise Rejected("encrypted", "the SP encryption key cannot be used") from exc
        try:
            assertion = decrypt_assertion(encrypted, key, MAX_RESPONSE_BYTES)
        except DecryptionError as exc:
            log.info("assertion not decrypted: %s", exc.detail)
            raise Rejected(
                exc.reason, exc.detail if exc.reason != "decrypt" else UNREADABLE
            ) from exc
        if assertion.tag != q("saml", "Assertion"):
            raise Rejected("decrypt", UNREADABLE)
        root.replace(encrypted, assertion)
        return assertion

    # --- the signature ---------------------------------------------------------------------
    def _verify(
        self, root: etree._Element, assertion: etree._Element
    ) -> tuple[etree._Element, etree._Element]:
        """The Response to read Destination from (the signed one when it is signed) and the
        signed assertion, both as signxml returns them: a signed assertion is preferred."""
        if assertion.find("ds:Signature", NS) is not None:
            signed = self._signed(assertion, assertion)
            if signed.tag != q("saml", "Assertion"):
                raise Rejected("wrapping", "the assertion's signature covers another element")
            return root, signed
        if root.find("ds:Signature", NS) is not None:
            signed = self._signed(root, root)
            if signed.tag != q("samlp", "Response"):
                raise Rejected("wrapping", "the response's signature covers another element")
            inner = [a for a in signed if a.tag == q("saml", "Assertion")]
            if len(inner) != 1:
                raise Rejected("assertion_count", "the signed response has no single assertion")
            return signed, inner[0]
        raise Rejected("unsigned", "neither the assertion nor the response is signed")

    def _signed(self, data: etree._Element, holder: etree._Element) -> etree._Element:
        """Verify the signature that is a direct child of ``holder`` with each pinned
        certificate; the signed element must be ``holder`` itself (same ID)."""
        certificates = self.idp.get("certificates") or []
        last: Exception | None = None
        tampered = False
        for cert in certificates:
            try:
                result = XMLVerifier().verify(
                    parse(etree.tostring(data), MAX_RESPONSE_BYTES),
                    x509_cert=cert,
                    expect_config=SignatureConfiguration(
                        location="./", expect_references=1, signature_methods=SIGNATURE_METHODS
                    ),
                )
            except Exception as exc:  # noqa: BLE001 - any failure to verify is a refusal
                tampered = tampered or isinstance(exc, InvalidDigest)
                last = exc
                continue
            signed = result.signed_xml  # type: ignore[union-attr]
            if signed is None or signed.get("ID") != holder.get("ID") or not holder.get("ID"):
                raise Rejected("wrapping", "the signature does not cover its own element")
            return signed
        kind = "digest" if tampered else "signature"
        detail = "tampered after signing" if kind == "digest" else "not signed by a pinned cert"
        log.info("SAML signature check failed: %s", type(last).__name__ if last else "no cert")
        raise Rejected(kind, detail)

    # --- conditions (on the signed element only) -------------------------------------------
    def _check(self, root: etree._Element, assertion: etree._Element, now: datetime) -> Identity:
        skew = timedelta(seconds=int(self.idp.get("clock_skew_seconds", 120)))
        entity_id = self.idp["entity_id"]
        issuer = assertion.find("saml:Issuer", NS)
        if issuer is None or (issuer.text or "").strip() != entity_id:
            raise Rejected("issuer", "the assertion's Issuer is not the IdP's entity id")
        outer_issuer = root.find("saml:Issuer", NS)
        if outer_issuer is not None and (outer_issuer.text or "").strip() != entity_id:
            raise Rejected("issuer", "the response's Issuer is not the IdP's entity id")
        destination = root.get("Destination")
        if destination is not None and destination != self.urls.acs_url:
            raise Rejected("destination", "Destination is not this ACS URL")
        conditions = assertion.find("saml:Conditions", NS)
        if conditions is None:
            raise Rejected("conditions", "the assertion has no Conditions")
        self._window(conditions, now, skew, "conditions")
        restrictions = conditions.findall("saml:AudienceRestriction", NS)
        if not restrictions or any(
            self.urls.entity_id
            not in [(a.text or "").strip() for a in r.findall("saml:Audience", NS)]
            for r in restrictions
        ):
            raise Rejected("audience", "the Audience is not this service provider")
        subject = assertion.find("saml:Subject", NS)
        name_id = subject.find("saml:NameID", NS) if subject is not None else None
        if name_id is None or not (name_id.text or "").strip():
            raise Rejected("subject", "the assertion has no NameID")
        data = self._bearer(subject, now, skew)
        in_response_to = data.get("InResponseTo")
        outer = root.get("InResponseTo")
        if outer is not None and outer != in_response_to:
            raise Rejected("in_response_to", "the response and assertion answer different requests")
        if in_response_to is None and not self.idp.get("idp_initiated", False):
            raise Rejected("in_response_to", "IdP-initiated sign-in is off for this IdP")
        not_on_or_after = _instant(conditions.get("NotOnOrAfter")) or _instant(
            data.get("NotOnOrAfter")
        )
        return Identity(
            name_id=(name_id.text or "").strip(),
            attributes=_attributes(assertion),
            assertion_id=assertion.get("ID", ""),
            in_response_to=in_response_to,
            not_on_or_after=not_on_or_after,
        )

    def _bearer(self, subject: etree._Element, now: datetime, skew: timedelta) -> etree._Element:
        """The bearer SubjectConfirmationData meant for our ACS (Recipient), still valid."""
        seen_recipient = False
        for confirmation in subject.findall("saml:SubjectConfirmation", NS):
            if confirmation.get("Method") != BEARER:
                continue
            data = confirmation.find("saml:SubjectConfirmationData", NS)
            if data is None:
                continue
            if data.get("Recipient") != self.urls.acs_url:
                seen_recipient = True
                continue
            if data.get("NotOnOrAfter") is None:
                raise Rejected("expired", "the subject confirmation has no NotOnOrAfter")
            self._window(data, now, skew, "subject confirmation")
            return data
        if seen_recipient:
            raise Rejected("recipient", "the Recipient is not this ACS URL")
        raise Rejected("subject", "no bearer subject confirmation")

    def _window(self, node: etree._Element, now: datetime, skew: timedelta, what: str) -> None:
        before = node.get("NotBefore")
        after = node.get("NotOnOrAfter")
        start, end = _instant(before), _instant(after)
        if (before and start is None) or (after and end is None):
            raise Rejected("malformed", f"{what}: a time that is not xs:dateTime", 400)
        if start is not None and now + skew < start:
            raise Rejected("not_yet_valid", f"{what}: NotBefore is in the future")
        if end is not None and now - skew >= end:
            raise Rejected("expired", f"{what}: NotOnOrAfter has passed")

    # --- once only -------------------------------------------------------------------------
    def _answer_once(self, identity: Identity, now: datetime) -> None:
        """Consume the AuthnRequest answered, then record the assertion id until it expires."""
        if not identity.assertion_id:
            raise Rejected("malformed", "the assertion has no ID", 400)
        expires = identity.not_on_or_after or now + timedelta(minutes=10)
        skew = int(self.idp.get("clock_skew_seconds", 120))
        ttl_ms = max(1000, int((expires - now).total_seconds() + skew) * 1000)
        key = f"{self.prefix}:sso:seen:{self.idp.id}:{identity.assertion_id}"
        # one round trip: the request taken (if any), the assertion id recorded; an id
        # recorded for a response refused here is harmless (it would be refused again)
        pipe = self.redis.pipeline(transaction=True)
        if identity.in_response_to is not None:
            pipe.getdel(self.requests.key(self.idp.id, identity.in_response_to))
        pipe.set(key, "1", nx=True, px=ttl_ms)
        replies = pipe.execute()
        if identity.in_response_to is not None and replies[0] is None:
            raise Rejected("in_response_to", "InResponseTo names no open request of ours")
        if not replies[-1]:
            raise Rejected("replay", "this assertion was used already")


def _instant(text: str | None) -> datetime | None:
    """An xs:dateTime in UTC (``Z`` or an offset; fractions of a second allowed)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _attributes(assertion: etree._Element) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for attr in assertion.iterfind("saml:AttributeStatement/saml:Attribute", NS):
        name = attr.get("Name")
        if not name:
            continue
        values = [(v.text or "").strip() for v in attr.findall("saml:AttributeValue", NS)]
        out.setdefault(name, []).extend(v for v in values if v)
    return out
