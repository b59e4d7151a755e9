"""Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature scheme")."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from bridge.targets.signing import (
    SignatureError,
    headers,
    new_secret,
    sign,
    verify,
)

# The reference test vector of the Standard Webhooks and Svix libraries.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def received(**overrides: str) -> dict[str, str]:
    """The reference message's headers, as a receiver sees them."""
    sent = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": SIGNATURE,
    }
    sent.update(overrides)
    return sent


def test_sign_matches_reference_vector():
    """HMAC-SHA256 over ``{id}.{timestamp}.{body}``, base64, prefixed ``v1,``."""
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE


def test_headers_carry_id_timestamp_and_signature():
    """The spec's three headers, with the timestamp as integer seconds."""
    assert headers(SECRET, MSG_ID, TIMESTAMP, BODY) == received()


def test_sign_accepts_secret_without_base64_padding():
    """Unpadded base64 after ``whsec_`` decodes to the same key, as the reference libraries do."""
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert secret.endswith("=")
    assert sign(secret.rstrip("="), MSG_ID, TIMESTAMP, BODY) == sign(
        secret, MSG_ID, TIMESTAMP, BODY
    )


def test_new_secret_is_prefixed_base64_of_32_random_bytes():
    """Serialized as ``whsec_`` + base64 (spec: symmetric secrets)."""
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_new_secret_differs_each_time():
    """Each endpoint gets its own secret."""
    assert new_secret() != new_secret()


def test_new_secret_signs_and_verifies():
    """A generated secret round-trips through sign and verify."""
    secret = new_secret()
    verify(secret, headers(secret, "msg_1", TIMESTAMP, BODY), BODY, now=TIMESTAMP)


def test_sign_rejects_secret_without_prefix():
    """A bare string is more likely a misconfigured password than a signing secret."""
    with pytest.raises(ValueError, match="whsec_"):
        sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", MSG_ID, TIMESTAMP, BODY)


def test_sign_rejects_secret_that_is_not_base64():
    """The part after the prefix must decode."""
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_not*base64!", MSG_ID, TIMESTAMP, BODY)


def test_sign_rejects_secret_shorter_than_24_bytes():
    """The spec asks for at least 192 bits."""
    short = "whsec_" + base64.b64encode(b"k" * 16).decode()
    with pytest.raises(ValueError, match="24 to 64 bytes"):
        sign(short, MSG_ID, TIMESTAMP, BODY)


def test_a_secret_signs_the_same_each_time_and_a_malformed_one_is_refused_each_time():
    """Decoded keys are kept per secret; a secret that does not decode never is."""
    other = new_secret()
    signed = [sign(secret, MSG_ID, TIMESTAMP, BODY) for secret in (SECRET, other, SECRET)]
    assert signed[0] == signed[2] == SIGNATURE != signed[1]
    for _ in range(2):
        with pytest.raises(ValueError, match="base64"):
            sign("whsec_not*base64!", MSG_ID, TIMESTAMP, BODY)


def test_sign_rejects_message_id_with_a_dot():
    """The spec: ids must not contain ``.``, the delimiter of the signed content."""
    with pytest.raises(ValueError, match="message id"):
        sign(SECRET, "msg.1", TIMESTAMP, BODY)


def test_verify_accepts_reference_vector():
    """A matching signature within the tolerance passes."""
    verify(SECRET, received(), BODY, now=TIMESTAMP)


def test_verify_matches_header_names_in_any_case():
    """HTTP header names are case-insensitive."""
    verify(SECRET, {k.title(): v for k, v in received().items()}, BODY, now=TIMESTAMP)


def test_verify_accepts_httpx_headers():
    """A receiver can pass the request's headers object straight through."""
    verify(SECRET, httpx.Headers(received()), BODY, now=TIMESTAMP)


def test_verify_accepts_any_matching_signature_in_the_list():
    """Space-separated signatures allow zero-downtime rotation (spec: "Webhook headers")."""
    old = sign(new_secret(), MSG_ID, TIMESTAMP, BODY)
    verify(SECRET, received(**{"webhook-signature": f"{old} {SIGNATURE}"}), BODY, now=TIMESTAMP)


def test_verify_ignores_other_signature_versions():
    """Only ``v1`` (HMAC-SHA256) signatures count; ``v1a`` is the asymmetric scheme."""
    value = SIGNATURE.replace("v1,", "v1a,")
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, received(**{"webhook-signature": value}), BODY, now=TIMESTAMP)


def test_verify_skips_malformed_signature_entries():
    """Garbage next to a valid signature does not hide it."""
    value = f"v1,@@@ nonsense {SIGNATURE}"
    verify(SECRET, received(**{"webhook-signature": value}), BODY, now=TIMESTAMP)


def test_verify_rejects_changed_body():
    """A single changed byte breaks the signature."""
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, received(), b'{"test": 2432232315}', now=TIMESTAMP)


def test_verify_rejects_other_secret():
    """A signature made under another secret does not match."""
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(new_secret(), received(), BODY, now=TIMESTAMP)


def test_verify_rejects_changed_message_id():
    """The id is signed, so it cannot be swapped to defeat idempotency checks."""
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, received(**{"webhook-id": "msg_other"}), BODY, now=TIMESTAMP)


def test_verify_rejects_changed_timestamp():
    """The timestamp is signed, so a replay cannot be made to look fresh."""
    stamp = str(TIMESTAMP + 1)
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, received(**{"webhook-timestamp": stamp}), BODY, now=TIMESTAMP)


def test_verify_rejects_timestamp_older_than_tolerance():
    """Replays are refused once the timestamp is more than ``tolerance`` seconds old."""
    with pytest.raises(SignatureError, match="old"):
        verify(SECRET, received(), BODY, now=TIMESTAMP + 301)


def test_verify_rejects_timestamp_further_ahead_than_tolerance():
    """A timestamp from the future is refused too."""
    with pytest.raises(SignatureError, match="future"):
        verify(SECRET, received(), BODY, now=TIMESTAMP - 301)


def test_verify_accepts_timestamp_at_the_tolerance_edge():
    """Exactly ``tolerance`` seconds either way still passes."""
    verify(SECRET, received(), BODY, now=TIMESTAMP + 300)
    verify(SECRET, received(), BODY, now=TIMESTAMP - 300)


def test_verify_honours_a_custom_tolerance():
    """Receivers may allow a wider clock skew."""
    verify(SECRET, received(), BODY, tolerance=3600, now=TIMESTAMP + 3000)


def test_verify_defaults_to_the_current_time():
    """Without ``now``, a freshly signed message passes."""
    stamp = int(time.time())
    verify(SECRET, headers(SECRET, MSG_ID, stamp, BODY), BODY)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_rejects_missing_header(name):
    """All three headers are required."""
    sent = received()
    del sent[name]
    with pytest.raises(SignatureError, match=f"missing header.*{name}"):
        verify(SECRET, sent, BODY, now=TIMESTAMP)


@pytest.mark.parametrize("stamp", ["1614265330.5", "-1614265330", "soon", "１６１４２６５３３０"])
def test_verify_rejects_timestamp_that_is_not_integer_seconds(stamp):
    """``webhook-timestamp`` is an integer Unix timestamp, in ASCII digits."""
    with pytest.raises(SignatureError, match="malformed webhook-timestamp"):
        verify(SECRET, received(**{"webhook-timestamp": stamp}), BODY, now=TIMESTAMP)


def test_verify_raises_value_error_for_a_malformed_secret():
    """A broken secret is a configuration error, not a forged message."""
    with pytest.raises(ValueError, match="whsec_") as info:
        verify("secret", received(), BODY, now=TIMESTAMP)
    assert not isinstance(info.value, SignatureError)
