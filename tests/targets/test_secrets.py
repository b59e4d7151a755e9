"""Secrets encrypted at rest with Fernet keys, rotated through MultiFernet."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet

from bridge.targets.secrets import SecretBox, SecretError

CLIENT_SECRET = "Xq8Q~3nT.bWp_example-client-secret~Zr4"


def test_decrypt_returns_what_encrypt_was_given():
    """A token round-trips to the same text, unicode included."""
    box = SecretBox([SecretBox.generate_key()])
    for text in (CLIENT_SECRET, "", "pässwörd ✓"):
        assert box.decrypt(box.encrypt(text)) == text


def test_encrypt_hides_the_plaintext():
    """The token does not contain the secret."""
    box = SecretBox([SecretBox.generate_key()])
    assert CLIENT_SECRET not in box.encrypt(CLIENT_SECRET)


def test_encrypt_gives_a_fresh_token_each_time():
    """Fernet uses a random IV, so equal secrets do not give equal tokens."""
    box = SecretBox([SecretBox.generate_key()])
    assert box.encrypt(CLIENT_SECRET) != box.encrypt(CLIENT_SECRET)


def test_token_is_a_standard_fernet_token():
    """Any Fernet implementation with the key can read what we store."""
    key = SecretBox.generate_key()
    token = SecretBox([key]).encrypt(CLIENT_SECRET)
    assert Fernet(key).decrypt(token.encode()).decode() == CLIENT_SECRET


def test_generate_key_makes_32_url_safe_base64_bytes():
    """The key format ``BRIDGE_SECRET_KEYS`` expects."""
    key = SecretBox.generate_key()
    assert len(base64.urlsafe_b64decode(key)) == 32


def test_first_key_encrypts():
    """New tokens are made under the first key only."""
    new, old = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox([new, old]).encrypt(CLIENT_SECRET)
    assert SecretBox([new]).decrypt(token) == CLIENT_SECRET
    with pytest.raises(SecretError):
        SecretBox([old]).decrypt(token)


def test_every_key_decrypts():
    """After a new key is put first, tokens made under the old one still decrypt."""
    new, old = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox([old]).encrypt(CLIENT_SECRET)
    assert SecretBox([new, old]).decrypt(token) == CLIENT_SECRET


def test_rotate_re_encrypts_under_the_first_key():
    """Rotated tokens no longer need the old key."""
    new, old = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox([old]).encrypt(CLIENT_SECRET)
    rotated = SecretBox([new, old]).rotate(token)
    assert SecretBox([new]).decrypt(rotated) == CLIENT_SECRET


def test_decrypt_rejects_a_token_made_under_another_key():
    """A wrong key raises SecretError, not cryptography's InvalidToken."""
    token = SecretBox([SecretBox.generate_key()]).encrypt(CLIENT_SECRET)
    with pytest.raises(SecretError, match="wrong key or damaged token"):
        SecretBox([SecretBox.generate_key()]).decrypt(token)


def test_decrypt_rejects_a_tampered_token():
    """Fernet tokens are authenticated: a flipped byte is detected."""
    box = SecretBox([SecretBox.generate_key()])
    raw = bytearray(base64.urlsafe_b64decode(box.encrypt(CLIENT_SECRET)))
    raw[-40] ^= 1
    with pytest.raises(SecretError):
        box.decrypt(base64.urlsafe_b64encode(bytes(raw)).decode())


@pytest.mark.parametrize("token", ["", "not a token", "gAAAAA", "ünïcode"])
def test_decrypt_rejects_text_that_is_not_a_token(token):
    """Garbage raises SecretError too."""
    with pytest.raises(SecretError):
        SecretBox([SecretBox.generate_key()]).decrypt(token)


def test_keys_may_carry_surrounding_whitespace():
    """``BRIDGE_SECRET_KEYS="k1, k2"`` works once split on commas."""
    key = SecretBox.generate_key()
    token = SecretBox([key]).encrypt(CLIENT_SECRET)
    assert SecretBox([f" {key} "]).decrypt(token) == CLIENT_SECRET


def test_empty_key_list_is_rejected():
    """At least one key is needed."""
    with pytest.raises(ValueError, match="at least one Fernet key"):
        SecretBox([])


@pytest.mark.parametrize("bad", ["", "short", base64.urlsafe_b64encode(b"k" * 16).decode()])
def test_malformed_key_is_rejected_by_position(bad):
    """The message says which key is wrong without showing any key."""
    good = SecretBox.generate_key()
    with pytest.raises(ValueError, match="secret key 2 of 2 is not a Fernet key") as info:
        SecretBox([good, bad])
    assert good not in str(info.value)


def test_a_single_string_is_not_a_key_list():
    """A bare string would otherwise be read as a list of one-character keys."""
    with pytest.raises(TypeError):
        SecretBox(SecretBox.generate_key())  # type: ignore[arg-type]
