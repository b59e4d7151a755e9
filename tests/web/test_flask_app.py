"""BridgeFlask remembers whether a function is a coroutine, per function: plain hooks and
views are returned as they are, and a view's methods, bound anew per request, share one
entry."""

from __future__ import annotations

import pytest

from bridge.web.flask_app import BridgeFlask, BridgeResponse, header_names, put_header


class View:
    def get(self) -> str:
        return "ok"


def hook() -> None:
    return None


def test_a_plain_function_is_returned_as_it_is():
    app = BridgeFlask(__name__)
    assert app.ensure_sync(hook) is hook
    assert app.ensure_sync(hook) is hook


def test_methods_bound_per_request_share_one_entry():
    app = BridgeFlask(__name__)
    for _ in range(3):
        method = View().get
        assert app.ensure_sync(method) is method
    assert list(app._is_coroutine) == [View.get]


def test_a_coroutine_function_goes_to_flasks_async_support():
    app = BridgeFlask(__name__)

    async def handler() -> str:
        return "ok"

    # the bridge installs no async support, so Flask says what it would need
    with pytest.raises(RuntimeError, match="async"):
        app.ensure_sync(handler)
    assert app._is_coroutine[handler] is True


# --- BridgeResponse: a Location that is already a URI is sent as it is ---------------------


def _sent_headers(response: BridgeResponse) -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {}
    for key, value in response.get_wsgi_headers({}):
        sent.setdefault(key, []).append(value)
    return sent


def test_a_uri_location_is_sent_unchanged_and_once():
    location = "https://SCIM.example.com:8443/scim/v2/Users/0a1b-c_d.e~f?x=1&y=%20#top"
    response = BridgeResponse(b"{}", 201, {"Location": location, "ETag": 'W/"1"'})
    sent = _sent_headers(response)
    assert sent["Location"] == [location]
    assert sent["ETag"] == ['W/"1"']
    assert sent["Content-Length"] == ["2"]


def test_the_response_keeps_its_location_after_it_is_sent():
    response = BridgeResponse(b"", 201, {"Location": "https://example.com/scim/v2/Users/1"})
    _sent_headers(response)
    assert response.headers["Location"] == "https://example.com/scim/v2/Users/1"


def test_an_iri_location_is_still_converted_to_a_uri():
    """RFC 3987 §3.1: non-ASCII characters are percent-encoded as UTF-8, the host as IDNA."""
    response = BridgeResponse(b"", 302, {"Location": "https://bücher.example/é dé"})
    assert _sent_headers(response)["Location"] == ["https://xn--bcher-kva.example/%C3%A9%20d%C3%A9"]


def test_header_names_are_read_lower_cased():
    response = BridgeResponse(b"", 200, {"ETag": 'W/"1"', "X-Thing": "a"})
    assert header_names(response.headers) >= {"etag", "x-thing", "content-type"}


def test_put_header_replaces_a_present_header_and_appends_a_missing_one():
    response = BridgeResponse(b"", 200, {"Cache-Control": "max-age=60"})
    names = header_names(response.headers)
    put_header(response.headers, names, "cache-control", "no-store")
    put_header(response.headers, names, "X-Content-Type-Options", "nosniff")
    assert response.headers.getlist("Cache-Control") == ["no-store"]
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert "x-content-type-options" in names
