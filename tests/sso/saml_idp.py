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

    def metadata(self, certs: list[str] | None = None, want_signed: bool = False) -> str:
        """Federation metadata as Entra publishes it (the parts the bridge reads); during a
        rollover Entra lists two signing certificates."""
        keys = "".join(
            f"""
    <KeyDescriptor use="signing">
      <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">
        <X509Data><X509Certificate>{"".join(c.strip().splitlines()[1:-1])}</X509Certificate></X509Data>
      </KeyInfo>
    </KeyDescriptor>"""
            for c in (certs or [self.cert])
        )
        want = ' WantAuthnRequestsSigned="true"' if want_signed else ""
        return f"""<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_{uuid.uuid4()}" entityID="{self.entity_id}"
    xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"{want}>{keys}
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


XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
AES256_CBC = XENC + "aes256-cbc"
AES128_GCM = XENC11 + "aes128-gcm"
AES256_GCM = XENC11 + "aes256-gcm"
RSA_OAEP_MGF1P = XENC + "rsa-oaep-mgf1p"
RSA_OAEP = XENC11 + "rsa-oaep"
RSA_1_5 = XENC + "rsa-1_5"


def encrypt_assertion(
    response: etree._Element,
    cert_pem: str,
    *,
    block: str = AES256_CBC,
    transport: str = RSA_OAEP_MGF1P,
    mgf: str | None = None,
    plaintext: bytes | None = None,
) -> etree._Element:
    """Replace the Response's (signed) assertion by an EncryptedAssertion as Entra's token
    encryption makes it (XML Encryption 1.1): the assertion under a fresh AES key, the key
    under the SP's certificate (RSA-OAEP by default) inside the data's KeyInfo."""
    import os

    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    assertion = assertion_of(response)
    data = plaintext if plaintext is not None else etree.tostring(assertion)
    size = {"128": 16, "192": 24, "256": 32}[block.rsplit("aes", 1)[1][:3]]
    aes_key = os.urandom(size)
    if block.endswith("gcm"):
        iv = os.urandom(12)
        cipher = iv + AESGCM(aes_key).encrypt(iv, data, None)
    else:
        iv = os.urandom(16)
        pad = 16 - len(data) % 16
        padded = data + os.urandom(pad - 1) + bytes([pad])  # XML Encryption's padding
        encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
        cipher = iv + encryptor.update(padded) + encryptor.finalize()
    public = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    mgf_hash = hashes.SHA256() if mgf and mgf.endswith("sha256") else hashes.SHA1()
    if transport == RSA_1_5:
        wrapped = public.encrypt(aes_key, padding.PKCS1v15())
    else:
        oaep = padding.OAEP(mgf=padding.MGF1(mgf_hash), algorithm=hashes.SHA1(), label=None)
        wrapped = public.encrypt(aes_key, oaep)
    mgf_xml = f'<xenc11:MGF xmlns:xenc11="{XENC11}" Algorithm="{mgf}"/>' if mgf else ""
    der = "".join(cert_pem.strip().splitlines()[1:-1])
    xml = f"""<EncryptedAssertion xmlns="{SAML}">
  <xenc:EncryptedData xmlns:xenc="{XENC}" Id="_{uuid.uuid4()}" Type="{XENC}Element">
    <xenc:EncryptionMethod Algorithm="{block}"/>
    <KeyInfo xmlns="{DS}">
      <xenc:EncryptedKey>
        <xenc:EncryptionMethod Algorithm="{transport}"><DigestMethod Algorithm="{DS}sha1"/>{mgf_xml}</xenc:EncryptionMethod>
        <KeyInfo><X509Data><X509Certificate>{der}</X509Certificate></X509Data></KeyInfo>
        <xenc:CipherData><xenc:CipherValue>{base64.b64encode(wrapped).decode()}</xenc:CipherValue></xenc:CipherData>
      </xenc:EncryptedKey>
    </KeyInfo>
    <xenc:CipherData><xenc:CipherValue>{base64.b64encode(cipher).decode()}</xenc:CipherValue></xenc:CipherData>
  </xenc:EncryptedData>
</EncryptedAssertion>"""
    response.replace(assertion, etree.fromstring(xml.encode()))
    return response
