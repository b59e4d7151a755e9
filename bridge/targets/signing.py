"""Standard Webhooks signatures (https://www.standardwebhooks.com/), the scheme Svix uses.

The sender signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 under the
endpoint's secret and sends the result as ``v1,<base64 signature>`` in the
``webhook-signature`` header, next to ``webhook-id`` and ``webhook-timestamp`` (integer
Unix seconds). The header may list several space-separated signatures, so a secret can be
rotated without downtime; a receiver accepts the message when any ``v1`` one matches.
Secrets are serialized as ``whsec_`` followed by the base64 of 24 to 64 random bytes.

Consumers can verify our deliveries with the ``standardwebhooks`` or ``svix`` libraries.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from functools import lru_cache

SECRET_PREFIX = "whsec_"
"""How a symmetric signing secret is marked when serialized (spec, "Signature scheme")."""

SECRET_BYTES = 32
"""Random bytes in a secret made by :func:`new_secret`."""

MIN_SECRET_BYTES = 24
"""Shortest secret the spec allows (192 bits)."""

MAX_SECRET_BYTES = 64
"""Longest secret the spec allows (512 bits)."""

DEFAULT_TOLERANCE = 300
"""Seconds a timestamp may differ from the receiver's clock, either way, against replays."""

VERSION = "v1"
"""The signature identifier of HMAC-SHA256 signatures."""

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

KEYS_KEPT = 64
"""Secrets whose decoded keys are kept at hand (a process signs for a few targets)."""

_MSG_ID = re.compile(r"^[^\s.]+$")
_TIMESTAMP = re.compile(r"^[0-9]+$")


class SignatureError(ValueError):
    """A webhook fails verification: headers missing or malformed, stale, or forged."""


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message; ValueError for a malformed secret or id."""
    if not _MSG_ID.match(msg_id):
        raise ValueError(f"message id {msg_id!r} must be non-empty, without dots or whitespace")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp must be Unix seconds as an int, not {timestamp!r}")
    digest = _digest(_key(secret), msg_id, timestamp, body)
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three ``webhook-*`` headers to send with ``body``."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> None:
    """Check a received webhook; raise SignatureError unless it is authentic and fresh.

    Header names match in any case. A malformed ``secret`` is a configuration error and
    raises a plain ValueError.
    """
    key = _key(secret)
    received = {name.lower(): value.strip() for name, value in headers.items()}
    wanted = (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    if missing := [name for name in wanted if not received.get(name)]:
        raise SignatureError(f"missing header(s): {', '.join(missing)}")
    msg_id, stamp = received[ID_HEADER], received[TIMESTAMP_HEADER]
    if not _MSG_ID.match(msg_id):
        raise SignatureError(f"malformed {ID_HEADER} {msg_id!r}")
    if not _TIMESTAMP.match(stamp):
        raise SignatureError(f"malformed {TIMESTAMP_HEADER} {stamp!r}")
    _check_fresh(int(stamp), int(time.time()) if now is None else now, tolerance)
    expected = _digest(key, msg_id, int(stamp), body)
    if not any(hmac.compare_digest(expected, s) for s in _signatures(received[SIGNATURE_HEADER])):
        raise SignatureError("no matching signature")


@lru_cache(maxsize=KEYS_KEPT)  # a malformed secret raises, and is not kept
def _key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret encodes; padding may be left off."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise ValueError("a webhook secret is base64 after its prefix") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(key)}"
        )
    return key


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.digest(key, signed, "sha256")


def _check_fresh(timestamp: int, now: int, tolerance: int) -> None:
    if now - timestamp > tolerance:
        raise SignatureError(f"timestamp {timestamp} is more than {tolerance}s old")
    if timestamp - now > tolerance:
        raise SignatureError(f"timestamp {timestamp} is more than {tolerance}s in the future")


def _signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` signatures in a header; other versions and garbage are skipped."""
    found = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != VERSION:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except ValueError:
            continue
    return found
