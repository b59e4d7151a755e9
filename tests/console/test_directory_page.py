"""Directory search and a resource's trace: scope and why, target id, last delivery."""

from __future__ import annotations

import pytest

from tests.factories import entra_group


@pytest.fixture
def ada(create_user) -> dict:
    return create_user(
        userName="ada@contoso.com",
        externalId="ada-ext",
        emails=[{"type": "work", "value": "Ada.Lovelace@contoso.com", "primary": True}],
    )


def group(scim, name: str, *member_ids: str) -> dict:
    body = entra_group(displayName=name, members=[{"value": m} for m in member_ids])
    response = scim.post("/Groups", json=body)
    assert response.status_code == 201, response.json
    return response.json


@pytest.mark.parametrize(
    ("by", "query"),
    [
        ("userName", "ADA@contoso.com"),
        ("email", "ada.lovelace@contoso.com"),
        ("externalId", "ada-ext"),
        ("any", "ada@contoso.com"),
    ],
)
def test_search_finds_a_user_by_an_indexed_attribute(console, ada, by, query):
    page = console.get("/directory", query_string={"q": query, "by": by}).text
    assert f"/console/directory/user/{ada['id']}" in page


def test_search_finds_a_group_by_name(console, scim):
    made = group(scim, "Engineering")
    page = console.get("/directory", query_string={"q": "engineering", "by": "group"}).text
    assert f"/console/directory/group/{made['id']}" in page


def test_search_falls_back_to_a_substring_of_the_name(console, ada, create_user):
    create_user(userName="grace@contoso.com")
    page = console.get("/directory", query_string={"q": "lovelace"}).text
    assert f"/console/directory/user/{ada['id']}" in page
    assert "grace@" not in page


def test_search_says_when_nothing_matches(console, ada):
    assert "Nothing matches" in console.get("/directory", query_string={"q": "nobody"}).text


def test_search_by_an_unknown_field_is_a_400(console):
    assert console.get("/directory", query_string={"q": "x", "by": "shoeSize"}).status_code == 400


def test_a_resource_page_shows_the_stored_resource(console, ada):
    page = console.get(f"/directory/user/{ada['id']}").text
    assert 'id="stored"' in page and "ada-ext" in page


def test_an_unknown_resource_is_a_404_page(console):
    assert console.get("/directory/user/nope").status_code == 404
    assert console.get("/directory/robot/nope").status_code == 404


def row(page: str, target: str) -> str:
    return page.split(f'data-target="{target}"')[1].split("</tr>")[0]


def test_trace_shows_scope_why_target_id_and_last_delivery(console, add_webhook, ada, pipeline):
    add_webhook()
    pipeline.run()
    traced = row(console.get(f"/directory/user/{ada['id']}").text, "hook")
    assert "all users" in traced
    assert "badge-delivered" in traced and "HTTP 204" in traced and "create" in traced


def test_trace_names_the_scoping_group_a_user_is_in(console, add_webhook, scim, ada):
    team = group(scim, "Engineering", ada["id"])
    add_webhook(scope={"type": "groups", "groups": [team["id"]]})
    traced = row(console.get(f"/directory/user/{ada['id']}").text, "hook")
    assert "member of group Engineering" in traced


def test_trace_says_a_user_outside_the_scoping_groups_is_out_of_scope(
    console, add_webhook, scim, ada
):
    team = group(scim, "Finance")
    add_webhook(scope={"type": "groups", "groups": [team["id"]]})
    traced = row(console.get(f"/directory/user/{ada['id']}").text, "hook")
    assert "<td>no</td>" in traced and "not a member of any scoping group (Finance)" in traced


def test_trace_explains_a_filter_scope(console, add_webhook, ada):
    add_webhook(scope={"type": "filter", "filter": 'userName sw "grace"'})
    traced = row(console.get(f"/directory/user/{ada['id']}").text, "hook")
    assert "does not match the filter" in traced


def test_trace_of_a_group_under_a_groups_scope(console, add_webhook, scim):
    team = group(scim, "Engineering")
    add_webhook(scope={"type": "groups", "groups": [team["id"]]})
    traced = row(console.get(f"/directory/group/{team['id']}").text, "hook")
    assert "a scoping group" in traced


def test_trace_shows_a_dead_letter(console, add_webhook, ada, pipeline, receiver):
    pipeline.run()  # Ada's creation reaches no target: there is none yet
    add_webhook()
    receiver.fail_next, receiver.fail_status = 1, 400
    pipeline.run()
    traced = row(console.get(f"/directory/user/{ada['id']}").text, "hook")
    assert "badge-dead" in traced and "HTTP 400" in traced


def test_trace_shows_a_change_waiting_for_its_job(console, add_webhook, ada, pipeline, scim):
    add_webhook()
    pipeline.run()
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Ada L."}]}  # fmt: skip
    assert scim.patch(f"/Users/{ada['id']}", json=body).status_code == 200
    pipeline.dispatcher.drain()  # dispatched, not yet delivered
    traced = row(console.get(f"/directory/user/{ada['id']}").text, "hook")
    assert "pending (changes)" in traced


def test_trace_says_a_target_that_takes_no_users(console, add_webhook, ada):
    add_webhook(resources=["groups"])
    assert "does not receive users" in row(console.get(f"/directory/user/{ada['id']}").text, "hook")


def test_deliver_now_queues_a_delivery_to_each_enabled_target(
    console, add_webhook, ada, pipeline, receiver
):
    add_webhook()
    add_webhook(name="off", enabled=False)
    pipeline.run()
    receiver.events.clear()
    console.post(f"/directory/user/{ada['id']}/deliver")
    page = console.get(f"/directory/user/{ada['id']}").text
    assert "Queued a delivery to hook." in page
    pipeline.run()
    assert receiver.types() == []  # it converged already: nothing to send


def test_reconcile_now_without_graph_says_what_to_configure(console, ada):
    console.post(f"/directory/user/{ada['id']}/reconcile")
    page = console.get(f"/directory/user/{ada['id']}").text
    assert "Microsoft Graph is not configured" in page


def test_trace_shows_the_id_a_scim_target_gave_the_user(
    console, admin, ada, pipeline, settings, redis_client
):
    """A second bridge is the SCIM target: its id for Ada is what the trace names."""
    import dataclasses

    from app import create_app
    from tests.fakes.scim_recorder import ScimRecorder
    from tests.live_server import serve

    downstream = create_app(dataclasses.replace(settings, key_prefix="downstream"))
    _, secret = downstream.extensions["bridge"].tokens.create("t")
    try:
        with serve(ScimRecorder(downstream)) as base:
            body = {"name": "crm", "kind": "scim", "url": f"{base}/scim/v2",
                    "auth": {"type": "bearer", "token": secret}}  # fmt: skip
            assert admin.post("/targets", json=body).status_code == 201
            pipeline.run()
        [theirs] = downstream.extensions["bridge"].directory.find(
            "user", "unique", "userName", ada["userName"]
        )
    finally:
        downstream.extensions["bridge"].redis.close()
    traced = row(console.get(f"/directory/user/{ada['id']}").text, "crm")
    assert theirs.id != ada["id"]
    assert f'<td class="mono">{theirs.id}</td>' in traced
