"""A test identity provider: its own RSA key and self-signed certificate, and SAML 2.0
Responses shaped like Entra's (claims, Issuer ``https://sts.windows.net/{tenant}/``,
signed assertion with exclusive C14N and RSA-SHA256), signed with signxml."""

from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
MS = "http://schemas.microsoft.com/identity/claims/"
GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"


def new_key_and_cert(common_name: str = "Microsoft Azure Federated SSO Certificate"):
    """An RSA key and a self-signed certificate valid for a year (PEM strings)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class User:
    """The person signing in, with Entra's claims."""

    upn: str = field(default_factory=lambda: f"ada.{uuid.uuid4().hex[:8]}@contoso.com")
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    given_name: str = "Ada"
    surname: str = "Lovelace"
    display_name: str = "Ada Lovelace"
    groups: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    """More claims (name → value), for claim mappings."""

    @property
    def email(self) -> str:
        return self.upn


@dataclass
class TestIdp:
    """An Entra-like IdP for one tenant, with one or more signing keys."""

    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    key: str = ""
    cert: str = ""

    __test__ = False  # not a test class, whatever its name

    def __post_init__(self) -> None:
        if not self.key:
            self.key, self.cert = new_key_and_cert()

    @property
    def entity_id(self) -> str:
        return f"https://sts.windows.net/{self.tenant_id}/"

    @property
    def sso_url(self) -> str:
        return f"https://login.microsoftonline.com/{self.tenant_id}/saml2"

    def config(self, name: str = "entra", **overrides) -> dict:
        """An admin API body for this IdP."""
        body = {
            "name": name,
            "protocol": "saml",
            "entity_id": self.entity_id,
            "sso_url": self.sso_url,
            "certificates": [self.cert],
            "allowed_redirects": ["https://app.example.com/"],
        }
        body.update(overrides)
        return body

    def metadata(self) -> str:
        """Federation metadata as Entra publishes it (the parts the bridge reads)."""
        der = "".join(self.cert.strip().splitlines()[1:-1])
        return f"""<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_{uuid.uuid4()}" entityID="{self.entity_id}"
    xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing">
      <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
        <X509Data><X509Certificate>{der}</X509Certificate></X509Data>
      </KeyInfo>
    </KeyDescriptor>
    <SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="{self.sso_url}"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="{self.sso_url}"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="{self.sso_url}"/>
  </IDPSSODescriptor>
</EntityDescriptor>"""

    def response(
        self,
        user: User,
        *,
        acs_url: str,
        audience: str,
        in_response_to: str | None = None,
        issuer: str | None = None,
        recipient: str | None = None,
        destination: str | None = None,
        now: datetime | None = None,
        lifetime: timedelta = timedelta(minutes=70),
        sign: str = "assertion",
        key: str | None = None,
        cert: str | None = None,
        assertion_id: str | None = None,
    ) -> etree._Element:
        """A Response element; ``sign`` is ``assertion`` (Entra's default), ``response`` or
        ``none``."""
        now = now or datetime.now(UTC)
        issuer = issuer or self.entity_id
        rid = f"_{uuid.uuid4()}"
        aid = assertion_id or f"_{uuid.uuid4()}"
        irt = f' InResponseTo="{in_response_to}"' if in_response_to else ""
        attrs = {
            MS + "tenantid": [self.tenant_id],
            MS + "objectidentifier": [user.object_id],
            MS + "identityprovider": [self.entity_id],
            MS + "authnmethodsreferences": [
                "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"
            ],
            CLAIMS + "givenname": [user.given_name],
            CLAIMS + "surname": [user.surname],
            CLAIMS + "emailaddress": [user.email],
            CLAIMS + "name": [user.upn],
            MS + "displayname": [user.display_name],
        }
        if user.groups:
            attrs[GROUPS] = user.groups
        for name, value in user.extra.items():
            attrs[name] = [value]
        statements = "".join(
            f'<Attribute Name="{name}">'
            + "".join(f"<AttributeValue>{v}</AttributeValue>" for v in values)
            + "</Attribute>"
            for name, values in attrs.items()
        )
        placeholder = f'<ds:Signature xmlns:ds="{DS}" Id="placeholder"/>'
        xml = f"""<samlp:Response ID="{rid}" Version="2.0" IssueInstant="{iso(now)}"
    Destination="{destination or acs_url}"{irt} xmlns:samlp="{SAMLP}">
  <Issuer xmlns="{SAML}">{issuer}</Issuer>{placeholder if sign == "response" else ""}
  <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
  <Assertion ID="{aid}" IssueInstant="{iso(now)}" Version="2.0" xmlns="{SAML}">
    <Issuer>{issuer}</Issuer>{placeholder if sign == "assertion" else ""}
    <Subject>
      <NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{user.upn}</NameID>
      <SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <SubjectConfirmationData{irt} NotOnOrAfter="{iso(now + lifetime)}"
            Recipient="{recipient or acs_url}"/>
      </SubjectConfirmation>
    </Subject>
    <Conditions NotBefore="{iso(now - timedelta(minutes=5))}" NotOnOrAfter="{iso(now + lifetime)}">
      <AudienceRestriction><Audience>{audience}</Audience></AudienceRestriction>
    </Conditions>
    <AttributeStatement>{statements}</AttributeStatement>
    <AuthnStatement AuthnInstant="{iso(now)}" SessionIndex="{aid}">
      <AuthnContext><AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</AuthnContextClassRef></AuthnContext>
    </AuthnStatement>
  </Assertion>
</samlp:Response>"""
        root = etree.fromstring(xml.encode())
        if sign == "none":
            return root
        signer = XMLSigner(c14n_algorithm=EXC_C14N)
        ref = aid if sign == "assertion" else rid
        return signer.sign(root, key=key or self.key, cert=cert or self.cert, reference_uri=ref)


def encode(element: etree._Element | bytes) -> str:
    """The SAMLResponse form value for a Response."""
    data = element if isinstance(element, bytes) else etree.tostring(element)
    return base64.b64encode(data).decode()


def assertion_of(response: etree._Element) -> etree._Element:
    return response.find(f"{{{SAML}}}Assertion")


def clone(element: etree._Element) -> etree._Element:
    return copy.deepcopy(element)
