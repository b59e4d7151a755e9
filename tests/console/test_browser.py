"""The console end to end, in a real headless Chromium (Debian's, driven by Playwright).

One bridge runs as in production (tests/faults/harness.py: Redis, the web tier, a
delivery and a sync worker, each a process on 127.0.0.1) with a live webhook receiver as
its target. One browser serves the whole module; each test opens a context of its own
(its own cookies). Every page visited is saved as a screenshot under var/screenshots/.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from bridge.directory.tokens import ADMIN_TOKEN_PREFIX, TokenStore
from bridge.runtime.services import ADMIN_TOKENS_HASH
from bridge.targets.signing import new_secret
from tests.factories import entra_user, patch
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.faults.harness import REPO, Stack
from tests.live_server import serve

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "var" / "screenshots"
WAIT = 20.0
"""Seconds a flow may wait for the workers (deliveries, a resync) or the page."""

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (scripts/test.sh installs it)",
)


def until(check: Callable[[], object], what: str, timeout: float = WAIT) -> object:
    """Poll ``check`` until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(new_secret())
    with serve(hook, quiet=True) as url:
        hook.url = url
        yield hook


@pytest.fixture(scope="module")
def stack(tmp_path_factory, receiver) -> Iterator[Stack]:
    bridge = Stack(
        tmp_path_factory.mktemp("console-stack"),
        {"BRIDGE_KEY_PREFIX": "console", "WEB_CONCURRENCY": "1", "BRIDGE_WORKER_THREADS": "2"},
    )
    bridge.start()
    try:
        with bridge_http(bridge) as http:
            body = {
                "name": "crm",
                "kind": "webhook",
                "url": receiver.url + "/events",
                "signing_secret": receiver.secret,
                "deletion_guard": {"max": 1, "window_seconds": 3600},
            }
            assert http.post("/admin/targets", json=body).status_code == 201
        yield bridge
    finally:
        bridge.stop()


def bridge_http(bridge: Stack) -> httpx.Client:
    return httpx.Client(base_url=bridge.url, headers=bridge.admin_headers(), timeout=5)


@pytest.fixture(scope="module")
def http(stack) -> Iterator[httpx.Client]:
    with bridge_http(stack) as client:
        yield client


@pytest.fixture(scope="module")
def browser(stack) -> Iterator[object]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, stack):
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 820})
    context.set_default_timeout(WAIT * 1000)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    context.close()


def shot(page, name: str) -> None:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0


def sign_in(page, token: str) -> None:
    page.goto("/console/login")
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_url("**/console/")


def push_user(stack: Stack, **overrides) -> dict:
    headers = {"Authorization": f"Bearer {stack.scim_token}"}
    body = entra_user(**overrides)
    response = httpx.post(f"{stack.url}/scim/v2/Users", json=body, headers=headers, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(http: httpx.Client) -> list[dict]:
    return http.get("/admin/targets/crm/deliveries").json()


def delivered(http: httpx.Client, uid: str, action: str = "create") -> bool:
    return any(
        d["id"] == uid and d["action"] == action and d["outcome"] == "delivered"
        for d in deliveries(http)
    )


def test_sign_in_and_see_the_overview(page, stack):
    page.goto("/console/")
    page.wait_for_url("**/console/login")
    shot(page, "login")
    sign_in(page, stack.admin_token)
    assert page.inner_text("h1").startswith("Overview")
    assert page.inner_text("#health-healthy") == "1"
    shot(page, "overview-first")


def test_the_overview_refreshes_itself(page, stack):
    sign_in(page, stack.admin_token)
    before = int(page.inner_text("#users"))
    push_user(stack)
    playwright_api.expect(page.locator("#users")).to_have_text(str(before + 1), timeout=12_000)


def test_find_a_user_and_its_trace_after_a_scim_push(page, stack, http):
    user = push_user(stack, userName="ada.lovelace@contoso.com")
    until(lambda: delivered(http, user["id"]), "the user's delivery")
    sign_in(page, stack.admin_token)
    page.click("nav >> text=Directory")
    page.fill("#q", "ada.lovelace@contoso.com")
    page.click("#search")
    shot(page, "directory")
    page.click("#results >> text=ada.lovelace@contoso.com")
    row = page.locator('tr[data-target="crm"]')
    assert "all users" in row.inner_text()
    last = row.locator("td.last").inner_text()
    assert "create" in last and "delivered" in last and "HTTP 204" in last
    shot(page, "resource")


def test_replay_a_dead_letter(page, stack, http, receiver):
    receiver.fail_next, receiver.fail_status = 1, 400
    user = push_user(stack)
    until(lambda: http.get("/admin/targets/crm/failed").json(), "a dead letter")
    sign_in(page, stack.admin_token)
    page.goto("/console/targets/crm")
    assert "Dead letters (1)" in page.inner_text("#dead h2")
    shot(page, "target")
    page.click("#dead tbody >> text=Replay")
    assert "Replaying 1 dead letters." in page.inner_text(".notice")
    until(lambda: delivered(http, user["id"]), "the replayed delivery")
    page.reload()
    assert "Dead letters (0)" in page.inner_text("#dead h2")


def test_approve_a_held_deprovision(page, stack, http):
    users = [push_user(stack)["id"] for _ in range(2)]
    until(lambda: all(delivered(http, u) for u in users), "the two users' deliveries")
    headers = {"Authorization": f"Bearer {stack.scim_token}"}
    off = patch({"op": "replace", "path": "active", "value": False})
    for uid in users:
        response = httpx.patch(f"{stack.url}/scim/v2/Users/{uid}", json=off, headers=headers)
        assert response.status_code == 200
    until(lambda: http.get("/admin/targets/crm/held").json(), "a held deprovision")
    sign_in(page, stack.admin_token)
    page.goto("/console/targets/crm")
    assert "Held deliveries (1)" in page.inner_text("#held h2")
    page.click("#held tbody >> text=Approve")
    until(lambda: all(delivered(http, u, "deactivate") for u in users), "both deprovisions")
    page.reload()
    assert "Held deliveries (0)" in page.inner_text("#held h2")


def test_start_a_resync_and_watch_progress_reach_done(page, stack):
    sign_in(page, stack.admin_token)
    page.click("nav >> text=Resync")
    page.select_option("#mode", "targets")
    page.select_option("#target", "crm")
    page.click("#start")
    playwright_api.expect(page.locator("#run-status")).to_have_text("completed")
    page.wait_for_selector("#history >> text=completed")
    assert page.inner_text("#run-phase") == "done"
    done, total = page.inner_text("#run-done"), page.inner_text("#run-total")
    assert done == total and int(total) > 0
    shot(page, "resync")


def test_request_log_and_tokens_pages(page, stack):
    sign_in(page, stack.admin_token)
    shot(page, "overview")  # after the flows above: users, deliveries, a resync
    page.click("nav >> text=SCIM log")
    assert "/scim/v2/Users" in page.inner_text("#requests")
    shot(page, "audit")
    page.click("nav >> text=Tokens")
    assert "faults" in page.inner_text("#admin-tokens")
    shot(page, "tokens")


def test_sign_out(page, stack):
    sign_in(page, stack.admin_token)
    page.click("#sign-out")
    page.wait_for_url("**/console/login")
    page.goto("/console/targets")
    page.wait_for_url("**/console/login")


def viewer_token(stack: Stack) -> str:
    """A viewer's admin token, written straight into the stack's Redis."""
    client = stack.client()
    try:
        store = TokenStore(
            client,
            stack.prefix,
            ADMIN_TOKENS_HASH,
            token_prefix=ADMIN_TOKEN_PREFIX,
            default_role="admin",
        )
        return store.create("auditor", "viewer")[1]
    finally:
        client.close()


def forged_post(page, path: str, token: str) -> int:
    """POST from inside the page, as a script on it could; the answer's status."""
    script = """async ([path, token]) => {
        const body = new URLSearchParams({csrf_token: token});
        const r = await fetch(path, {method: "POST", body, redirect: "manual"});
        return r.status;
    }"""
    status: int = page.evaluate(script, [path, token])
    return status


def test_a_viewer_cannot_press_admin_buttons(page, stack):
    sign_in(page, viewer_token(stack))
    assert "viewer" in page.inner_text(".me")
    page.goto("/console/targets/crm")
    assert page.locator("main button").count() == 0
    assert page.locator("form[method=post]").count() == 1  # signing out
    shot(page, "target-viewer")
    csrf = page.get_attribute('meta[name="csrf-token"]', "content")
    assert forged_post(page, "/console/targets/crm/sync", csrf) == 403


def test_csrf_is_enforced(page, stack):
    sign_in(page, stack.admin_token)
    page.goto("/console/targets/crm")
    assert forged_post(page, "/console/targets/crm/test", "") == 403
    assert forged_post(page, "/console/targets/crm/test", "0" * 64) == 403
    csrf = page.get_attribute('meta[name="csrf-token"]', "content")
    assert forged_post(page, "/console/targets/crm/test", csrf) == 0  # the redirect: accepted
