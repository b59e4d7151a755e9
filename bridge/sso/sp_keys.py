"""The service provider's own keys, per IdP: one to sign AuthnRequests, one to decrypt
assertions (Entra's token encryption).

Each is an RSA private key (PEM, at least MIN_RSA_BITS) with its certificate; the key is
write-only and stored encrypted like target secrets (:mod:`bridge.targets.secrets`), the
certificate is public and goes into our SP metadata (``use="signing"`` /
``use="encryption"``) for the IdP to pin.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.sso.metadata import pem_of

MIN_RSA_BITS = 2048
"""Smallest RSA key taken for signing or decryption (NIST SP 800-131A)."""

MAX_KEY_CHARS = 16384
"""Longest private key PEM accepted (an RSA 8192-bit key is about 6,400)."""


class SpKeyError(ValueError):
    """A private key that cannot be used, or that does not belong to its certificate."""


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An unencrypted PEM RSA private key of MIN_RSA_BITS or more; SpKeyError otherwise
    (the message never shows the key)."""
    if len(pem) > MAX_KEY_CHARS:
        raise SpKeyError("the private key is too long")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise SpKeyError("not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SpKeyError("an RSA private key is expected")
    if key.key_size < MIN_RSA_BITS:
        raise SpKeyError(f"the RSA key has {key.key_size} bits, at least {MIN_RSA_BITS} expected")
    return key


def check_pair(key_pem: str, cert_pem: str) -> str:
    """The certificate as PEM, after checking the key is RSA, long enough and is the
    certificate's; SpKeyError (or MetadataError for the certificate) otherwise."""
    cert = pem_of(cert_pem)
    key = load_private_key(key_pem)
    public = x509.load_pem_x509_certificate(cert.encode()).public_key()
    if not isinstance(public, rsa.RSAPublicKey) or public.public_numbers() != (
        key.public_key().public_numbers()
    ):
        raise SpKeyError("the private key does not belong to the certificate")
    return cert


def sign_rsa_sha256(key_pem: str, data: bytes) -> bytes:
    """An RSASSA-PKCS1-v1_5 SHA-256 signature of ``data`` (XML DSig's rsa-sha256)."""
    return load_private_key(key_pem).sign(data, padding.PKCS1v15(), hashes.SHA256())
