"""Per-token rate limit: 429 with Retry-After past the burst, per token, off at 0."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app import create_app
from bridge.runtime.config import DEFAULT_RATE_BURST, DEFAULT_RATE_LIMIT
from bridge.web.ratelimit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_the_burst_then_asks_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.wait("t") for _ in range(3)] == [0, 0, 0]
    assert limiter.wait("t") == pytest.approx(0.5)


def test_the_bucket_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=1, clock=clock)
    assert limiter.wait("t") == 0
    clock.now += 0.5
    assert limiter.wait("t") == 0
    assert limiter.wait("t") > 0


def test_each_token_has_its_own_bucket() -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=Clock())
    assert limiter.wait("a") == 0
    assert limiter.wait("a") > 0
    assert limiter.wait("b") == 0


def test_rate_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(rate=0, burst=1, clock=Clock())
    assert all(limiter.wait("t") == 0 for _ in range(1000))


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert retry_after(0.01) == "1"
    assert retry_after(2.2) == "3"


def test_default_never_throttles_entra_sending_fifty_requests_a_second() -> None:
    clock = Clock()
    limiter = RateLimiter(DEFAULT_RATE_LIMIT, DEFAULT_RATE_BURST, clock=clock)
    for _ in range(60 * 50):  # a minute of it
        assert limiter.wait("entra") == 0
        clock.now += 1 / 50


@pytest.fixture
def slow_app(settings, redis_client):
    app = create_app(replace(settings, rate_limit=0.001, rate_burst=2))
    yield app
    app.extensions["bridge"].redis.close()


def test_scim_requests_past_the_burst_are_429_with_retry_after_and_a_scim_error(slow_app):
    _, token = slow_app.extensions["bridge"].tokens.create("t")
    client = slow_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert [client.get("/scim/v2/Users", headers=headers).status_code for _ in range(2)] == [
        200,
        200,
    ]
    response = client.get("/scim/v2/Users", headers=headers)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert response.json["status"] == "429"
    _, other = slow_app.extensions["bridge"].tokens.create("other")
    assert (
        client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {other}"}).status_code
        == 200
    )


def test_admin_requests_past_the_burst_are_429_with_retry_after_json(slow_app):
    _, token = slow_app.extensions["bridge"].admin_tokens.create("t")
    client = slow_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        assert client.get("/admin/targets", headers=headers).status_code == 200
    response = client.get("/admin/targets", headers=headers)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json["code"] == 429


def test_invalid_tokens_do_not_spend_a_valid_tokens_budget(slow_app):
    _, token = slow_app.extensions["bridge"].tokens.create("t")
    client = slow_app.test_client()
    for _ in range(5):
        assert (
            client.get("/scim/v2/Users", headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
    assert (
        client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
