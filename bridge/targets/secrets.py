"""Secrets encrypted at rest: target credentials and signing secrets stored in Redis.

Tokens are Fernet (AES-128-CBC with HMAC-SHA256, authenticated, timestamped), made by
``cryptography``. Keys come from ``BRIDGE_SECRET_KEYS``, comma-separated: the first
encrypts, every one decrypts. To rotate, put a new key first, keep the old ones until
:meth:`SecretBox.rotate` has re-encrypted every stored token, then drop them.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretError(Exception):
    """A token cannot be decrypted: made under another key, tampered with, or not a token."""


class SecretBox:
    """Encrypts and decrypts short strings under a list of Fernet keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        """ValueError for an empty list or a malformed key (the message never shows a key)."""
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not one string")
        if not keys:
            raise ValueError("no secret keys: give at least one Fernet key")
        fernets = []
        for n, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip()))
            except (ValueError, TypeError, AttributeError) as exc:
                raise ValueError(
                    f"secret key {n} of {len(keys)} is not a Fernet key "
                    "(32 bytes, url-safe base64; make one with SecretBox.generate_key())"
                ) from exc
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        """A token for ``plaintext`` under the first key."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The plaintext of a token made under any of the keys; SecretError otherwise."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise SecretError("cannot decrypt secret: wrong key or damaged token") from exc

    def rotate(self, token: str) -> str:
        """The same secret re-encrypted under the first key; SecretError as for decrypt."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise SecretError("cannot re-encrypt secret: wrong key or damaged token") from exc

    @staticmethod
    def generate_key() -> str:
        """A fresh Fernet key, as text for ``BRIDGE_SECRET_KEYS``."""
        return Fernet.generate_key().decode()
