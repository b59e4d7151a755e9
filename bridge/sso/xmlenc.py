"""Decrypting a ``saml:EncryptedAssertion`` (XML Encryption 1.1) with the SP's key.

Entra's token encryption wraps the signed assertion in an ``xenc:EncryptedData`` of type
Element: the assertion encrypted with a fresh AES key (AES-256-CBC), that key encrypted
for our encryption certificate with RSA-OAEP in an ``xenc:EncryptedKey`` (inside the
data's ``ds:KeyInfo``, or beside it in the EncryptedAssertion, as SAML core §2.3.4
allows). Decryption uses ``cryptography``; only these algorithms are accepted:

- key transport: RSA-OAEP, ``xmlenc#rsa-oaep-mgf1p`` (§5.5.2) and ``xmlenc11#rsa-oaep``
  (MGF1 with SHA-1 or SHA-2). RSA PKCS#1 v1.5 (``xmlenc#rsa-1_5``) is refused: it is open
  to Bleichenbacher's attack, and XML Encryption 1.1 §5.5.1 warns against it.
- block encryption: AES-GCM (§5.2.4) and AES-CBC (§5.2.2), 128, 192 or 256 bits. CBC
  carries no integrity of its own: the decrypted assertion must still carry a valid
  signature, and until that signature is verified every failure is answered alike
  (:mod:`bridge.sso.saml_validate`), so the answers are no padding or parsing oracle.

The plaintext goes through the same hardened parser as the message (no DTD, no
entities) and is parsed with the namespaces in scope at the EncryptedAssertion.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from bridge.sso.xml import UnsafeXml, parse

XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DS = "http://www.w3.org/2000/09/xmldsig#"
DSMORE = "http://www.w3.org/2001/04/xmldsig-more#"
ENC_NS = {"xenc": XENC, "xenc11": XENC11, "ds": DS}

RSA_OAEP_MGF1P = XENC + "rsa-oaep-mgf1p"
RSA_OAEP = XENC11 + "rsa-oaep"
RSA_1_5 = XENC + "rsa-1_5"
KEY_TRANSPORTS = frozenset({RSA_OAEP_MGF1P, RSA_OAEP})

CBC = {XENC + "aes128-cbc": 16, XENC + "aes192-cbc": 24, XENC + "aes256-cbc": 32}
GCM = {XENC11 + "aes128-gcm": 16, XENC11 + "aes192-gcm": 24, XENC11 + "aes256-gcm": 32}
"""Block encryption algorithm → AES key length in bytes."""

DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    DS + "sha1": hashes.SHA1,  # OAEP's default; SHA-1 is sound in OAEP, unlike signatures
    XENC + "sha256": hashes.SHA256,
    DSMORE + "sha384": hashes.SHA384,
    XENC + "sha512": hashes.SHA512,
}
MGFS: dict[str, type[hashes.HashAlgorithm]] = {
    XENC11 + "mgf1sha1": hashes.SHA1,
    XENC11 + "mgf1sha224": hashes.SHA224,
    XENC11 + "mgf1sha256": hashes.SHA256,
    XENC11 + "mgf1sha384": hashes.SHA384,
    XENC11 + "mgf1sha512": hashes.SHA512,
}

ELEMENT_TYPE = XENC + "Element"


class DecryptionError(ValueError):
    """The assertion cannot be decrypted; ``reason`` is ``weak_encryption`` for a refused
    algorithm, ``decrypt`` for everything else (one reason: no oracle)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decrypt_assertion(
    encrypted: etree._Element, key: rsa.RSAPrivateKey, max_bytes: int
) -> etree._Element:
    """The element an ``EncryptedAssertion`` holds, parsed safely; DecryptionError else."""
    data = encrypted.find("xenc:EncryptedData", ENC_NS)
    if data is None:
        raise DecryptionError("decrypt", "no EncryptedData")
    if data.get("Type") not in (None, ELEMENT_TYPE):
        raise DecryptionError("decrypt", "EncryptedData is not of type Element")
    block = _algorithm(data)
    if block not in CBC and block not in GCM:
        raise DecryptionError("weak_encryption", "the data is not encrypted with AES-CBC or GCM")
    encrypted_key = data.find("ds:KeyInfo/xenc:EncryptedKey", ENC_NS)
    if encrypted_key is None:
        encrypted_key = encrypted.find("xenc:EncryptedKey", ENC_NS)
    if encrypted_key is None:
        raise DecryptionError("decrypt", "no EncryptedKey for the SP")
    aes_key = _unwrap(encrypted_key, key)
    plaintext = _decrypt(block, aes_key, _cipher_value(data))
    return _element(plaintext, encrypted, max_bytes)


def _algorithm(node: etree._Element) -> str:
    method = node.find("xenc:EncryptionMethod", ENC_NS)
    return (method.get("Algorithm") or "") if method is not None else ""


def _cipher_value(node: etree._Element) -> bytes:
    value = node.find("xenc:CipherData/xenc:CipherValue", ENC_NS)
    if value is None or not (value.text or "").strip():
        raise DecryptionError("decrypt", "no CipherValue")
    try:
        return base64.b64decode("".join((value.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError("decrypt", "CipherValue is not base64") from exc


def _unwrap(encrypted_key: etree._Element, key: rsa.RSAPrivateKey) -> bytes:
    """The AES key, decrypted with RSA-OAEP; RSA 1.5 and anything else refused."""
    algorithm = _algorithm(encrypted_key)
    if algorithm == RSA_1_5:
        raise DecryptionError("weak_encryption", "RSA PKCS#1 v1.5 key transport is refused")
    if algorithm not in KEY_TRANSPORTS:
        raise DecryptionError("weak_encryption", "the key transport is not RSA-OAEP")
    method = encrypted_key.find("xenc:EncryptionMethod", ENC_NS)
    assert method is not None  # _algorithm found it
    digest = method.find("ds:DigestMethod", ENC_NS)
    digest_name = (digest.get("Algorithm") or "") if digest is not None else DS + "sha1"
    mgf = method.find("xenc11:MGF", ENC_NS)
    mgf_name = (mgf.get("Algorithm") or "") if mgf is not None else XENC11 + "mgf1sha1"
    if algorithm == RSA_OAEP_MGF1P and mgf is not None:
        raise DecryptionError("decrypt", "rsa-oaep-mgf1p takes no MGF")
    if digest_name not in DIGESTS or mgf_name not in MGFS:
        raise DecryptionError("weak_encryption", "an OAEP digest that is not allowed")
    params = method.find("xenc:OAEPparams", ENC_NS)
    label = base64.b64decode(params.text or "") if params is not None and params.text else None
    oaep = padding.OAEP(
        mgf=padding.MGF1(MGFS[mgf_name]()), algorithm=DIGESTS[digest_name](), label=label
    )
    try:
        return key.decrypt(_cipher_value(encrypted_key), oaep)
    except ValueError as exc:
        raise DecryptionError("decrypt", "the key was not encrypted for this SP") from exc


def _decrypt(block: str, aes_key: bytes, data: bytes) -> bytes:
    """AES-GCM (12-byte IV, 16-byte tag) or AES-CBC (16-byte IV, XML Encryption padding)."""
    size = GCM.get(block) or CBC[block]
    if len(aes_key) != size:
        raise DecryptionError("decrypt", "the key does not fit the algorithm")
    if block in GCM:
        if len(data) < 12 + 16:
            raise DecryptionError("decrypt", "the ciphertext is too short")
        try:
            return AESGCM(aes_key).decrypt(data[:12], data[12:], None)
        except InvalidTag as exc:
            raise DecryptionError("decrypt", "the ciphertext was altered") from exc
    if len(data) < 32 or len(data) % 16:
        raise DecryptionError("decrypt", "the ciphertext is not whole blocks")
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(data[:16])).decryptor()
    padded = decryptor.update(data[16:]) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= 16:
        raise DecryptionError("decrypt", "the ciphertext was altered")
    return padded[:-pad]


def _element(plaintext: bytes, context: etree._Element, max_bytes: int) -> etree._Element:
    """The plaintext parsed as one element, with the prefixes declared around ``context``."""
    declarations = "".join(
        f' xmlns:{prefix}="{uri}"' if prefix else f' xmlns="{uri}"'
        for prefix, uri in context.nsmap.items()
    )
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecryptionError("decrypt", "the plaintext is not UTF-8") from exc
    if text.startswith("<?xml"):
        text = text.split("?>", 1)[-1]
    wrapped = f"<wrapper{declarations}>{text}</wrapper>".encode()
    try:
        wrapper = parse(wrapped, max_bytes)
    except UnsafeXml as exc:
        raise DecryptionError("decrypt", f"the plaintext: {exc}") from exc
    children = [c for c in wrapper if isinstance(c.tag, str)]
    if len(children) != 1 or (wrapper.text or "").strip():
        raise DecryptionError("decrypt", "the plaintext is not one element")
    return children[0]
