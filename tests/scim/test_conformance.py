"""scim2-tester, a third-party RFC 7643/7644 conformance checker, against a live bridge:
every check it runs must pass."""

from __future__ import annotations

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.live_server import serve


def test_every_scim2_tester_check_passes_against_a_live_server(app, token):
    with serve(app, quiet=True) as base:
        with httpx2.Client(
            base_url=f"{base}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            results = check_server(SyncSCIMClient(http))
    failures = [
        (r.resource_type, r.title, r.reason) for r in results if r.status is not Status.SUCCESS
    ]
    assert results and not failures
