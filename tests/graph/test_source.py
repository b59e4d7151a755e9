"""GraphSource against the fake Graph: delta rounds, scope, members, lookups, throttling."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import pytest
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from bridge.graph.client import DeltaExpired, GraphSettings, GraphThrottled
from bridge.graph.source import DeltaPage, GraphNotFound, GraphSource
from tests.fakes.graph_tenant import GROUP_TYPE, USER_TYPE

USER_SELECT = ["id", "userPrincipalName", "displayName", "accountEnabled", "manager"]
GROUP_SELECT = ["id", "displayName", "members"]


def run(settings: GraphSettings, work: Callable[[GraphSource], Awaitable]):
    """Run ``work`` in a fresh event loop with an open source, as a job does."""

    async def main():
        async with GraphSource(settings) as source:
            return await work(source)

    return asyncio.run(main())


def users_round(settings, link=None, select=USER_SELECT) -> list[DeltaPage]:
    async def work(source):
        return [page async for page in source.users_delta(link, select)]

    return run(settings, work)


def groups_round(settings, link=None, select=GROUP_SELECT) -> list[DeltaPage]:
    async def work(source):
        return [page async for page in source.groups_delta(link, select)]

    return run(settings, work)


def items(pages: list[DeltaPage]) -> dict[str, dict]:
    return {item["id"]: item for page in pages for item in page.items}


def test_initial_users_round_spans_pages_and_ends_with_a_delta_link(fake_graph, graph_settings):
    users = [fake_graph.tenant.add_user() for _ in range(8)]
    pages = users_round(graph_settings)
    assert [len(p.items) for p in pages] == [3, 3, 2]
    assert [p.delta_link is None for p in pages] == [True, True, False]
    assert "$deltatoken=" in pages[-1].delta_link
    got = items(pages)
    assert list(got) == [u["id"] for u in users]
    first = got[users[0]["id"]]
    assert first == {
        "id": users[0]["id"],
        "userPrincipalName": users[0]["userPrincipalName"],
        "displayName": users[0]["displayName"],
        "accountEnabled": True,
    }
    sent = fake_graph.graph_requests("/users/delta")
    assert sent[0].query["$select"] == ",".join(USER_SELECT)
    assert all(r.headers["Prefer"] == "odata.maxpagesize=3" for r in sent)


def test_incremental_round_returns_changes_and_tombstones(fake_graph, graph_settings):
    tenant = fake_graph.tenant
    boss, kept, renamed, soft, hard = (tenant.add_user() for _ in range(5))
    tenant.update_user(kept["id"], manager=boss["id"])
    link = users_round(graph_settings)[-1].delta_link

    tenant.update_user(renamed["id"], displayName="Renamed", accountEnabled=False)
    tenant.update_user(kept["id"], manager=None)
    tenant.delete_user(soft["id"])
    tenant.delete_user(hard["id"], permanent=True)
    new = tenant.add_user(displayName="New")
    pages = users_round(graph_settings, link)

    got = items(pages)
    assert set(got) == {renamed["id"], kept["id"], soft["id"], hard["id"], new["id"]}
    assert got[renamed["id"]]["displayName"] == "Renamed"
    assert got[renamed["id"]]["accountEnabled"] is False
    assert got[kept["id"]]["manager"] is None
    assert got[soft["id"]] == {"id": soft["id"], "@removed": {"reason": "changed"}}
    assert got[hard["id"]] == {"id": hard["id"], "@removed": {"reason": "deleted"}}
    assert got[new["id"]]["displayName"] == "New"
    assert pages[-1].delta_link and pages[-1].delta_link != link
    assert users_round(graph_settings, pages[-1].delta_link)[0].items == []


def test_incremental_round_with_only_changed_properties(fake_graph, graph_settings):
    """Graph promises "at least the updated properties": the engine must cope with less."""
    tenant = fake_graph.tenant
    tenant.only_changed_properties = True
    boss, user = tenant.add_user(), tenant.add_user()
    link = users_round(graph_settings)[-1].delta_link
    tenant.update_user(user["id"], displayName="Only this", manager=boss["id"])
    tenant.update_user(boss["id"], displayName=boss["displayName"])  # no real change
    got = items(users_round(graph_settings, link))
    assert got[user["id"]] == {
        "id": user["id"],
        "displayName": "Only this",
        "manager": {"id": boss["id"]},
    }
    assert got[boss["id"]] == {"id": boss["id"]}


def test_manager_is_an_id_object(fake_graph, graph_settings):
    tenant = fake_graph.tenant
    boss = tenant.add_user()
    report = tenant.add_user(manager=boss["id"])
    got = items(users_round(graph_settings))
    assert got[report["id"]]["manager"] == {"id": boss["id"]}
    assert "manager" not in got[boss["id"]]
    assert "manager@delta" not in got[report["id"]]


def test_a_round_is_frozen_when_it_begins(fake_graph, graph_settings):
    tenant = fake_graph.tenant
    before = [tenant.add_user() for _ in range(4)]

    async def work(source):
        pages = []
        async for page in source.users_delta(None, ["id", "displayName"]):
            if not pages:
                tenant.update_user(before[3]["id"], displayName="Changed mid-round")
                tenant.add_user(displayName="Late")
            pages.append(page)
        return pages

    pages = run(graph_settings, work)
    assert [u["displayName"] for u in items(pages).values()] == [u["displayName"] for u in before]
    later = items(users_round(graph_settings, pages[-1].delta_link))
    assert sorted(u["displayName"] for u in later.values()) == ["Changed mid-round", "Late"]


def test_groups_round_carries_members_delta(fake_graph, graph_settings):
    tenant = fake_graph.tenant
    alice, bob, carol = (tenant.add_user() for _ in range(3))
    inner = tenant.add_group(members=[carol["id"]])
    outer = tenant.add_group(members=[alice["id"], bob["id"], inner["id"]], displayName="Outer")
    pages = groups_round(graph_settings)
    got = items(pages)
    assert got[outer["id"]]["displayName"] == "Outer"
    assert got[outer["id"]]["members@delta"] == [
        {"@odata.type": USER_TYPE, "id": alice["id"]},
        {"@odata.type": USER_TYPE, "id": bob["id"]},
        {"@odata.type": GROUP_TYPE, "id": inner["id"]},
    ]

    tenant.remove_members(outer["id"], bob["id"])
    tenant.add_members(outer["id"], carol["id"])
    tenant.delete_group(inner["id"], permanent=True)
    changed = items(groups_round(graph_settings, pages[-1].delta_link))
    assert changed[outer["id"]] == {
        "id": outer["id"],
        "members@delta": [
            {"@odata.type": USER_TYPE, "id": bob["id"], "@removed": {"reason": "deleted"}},
            {"@odata.type": USER_TYPE, "id": carol["id"]},
        ],
    }
    assert changed[inner["id"]] == {"id": inner["id"], "@removed": {"reason": "deleted"}}


def test_expired_delta_link_raises_delta_expired(fake_graph, graph_settings):
    fake_graph.tenant.add_user()
    link = users_round(graph_settings)[-1].delta_link
    fake_graph.tenant.expire_delta_tokens()
    with pytest.raises(DeltaExpired, match="syncStateNotFound") as caught:
        users_round(graph_settings, link)
    assert isinstance(caught.value.__cause__, ODataError)
    assert fake_graph.graph_requests()[-1].status == 410


def test_throttled_request_is_retried_after_retry_after(fake_graph, graph_settings):
    fake_graph.tenant.add_user()
    fake_graph.throttle(2)
    pages = users_round(graph_settings)
    assert len(items(pages)) == 1
    sent = fake_graph.graph_requests("/users/delta")
    assert [r.status for r in sent] == [429, 429, 200]
    assert [r.headers.get("Retry-Attempt") for r in sent] == [None, "1", "2"]


def test_persistent_throttling_raises_graph_throttled(fake_graph, graph_settings):
    fake_graph.throttle(100)
    with pytest.raises(GraphThrottled, match="TooManyRequests") as caught:
        users_round(graph_settings)
    assert isinstance(caught.value.__cause__, ODataError)
    assert (caught.value.status, caught.value.retry_after) == (429, 1.0)
    assert len(fake_graph.graph_requests()) == 5  # the request and MAX_RETRIES retries


def test_assigned_principals_follows_paging(fake_graph, graph_settings):
    tenant = fake_graph.tenant
    users = [tenant.add_user()["id"] for _ in range(1000)]
    groups = [tenant.add_group()["id"] for _ in range(2)]
    for principal in users + groups:
        tenant.assign(principal)

    got = run(graph_settings, lambda source: source.assigned_principals())
    assert got == (set(users), set(groups))
    sent = fake_graph.graph_requests("/appRoleAssignedTo")
    assert len(sent) == 2
    assert sent[0].query == {"$select": "principalId,principalType", "$top": "999"}


def test_scope_groups_without_service_principal(graph_settings):
    settings = dataclasses.replace(
        graph_settings, service_principal_id="", scope_groups=("g1", "g2")
    )
    got = run(settings, lambda source: source.assigned_principals())
    assert got == (set(), {"g1", "g2"})


def test_group_member_ids_pages_direct_user_members(fake_graph, graph_settings):
    tenant = fake_graph.tenant
    users = [tenant.add_user()["id"] for _ in range(5)]
    nested = tenant.add_group()
    group = tenant.add_group(members=[users[0], nested["id"], *users[1:]])

    async def work(source):
        return [ids async for ids in source.group_member_ids(group["id"])]

    assert run(graph_settings, work) == [users[0:3], users[3:]]
    sent = fake_graph.graph_requests("/members/")
    assert sent[0].query == {"$select": "id", "$top": "3"}


def test_group_member_ids_of_missing_group(fake_graph, graph_settings):
    async def work(source):
        return [ids async for ids in source.group_member_ids("no-such-group")]

    with pytest.raises(GraphNotFound):
        run(graph_settings, work)


def test_user_by_id_or_upn_and_missing(fake_graph, graph_settings):
    tenant = fake_graph.tenant
    boss = tenant.add_user()
    user = tenant.add_user(manager=boss["id"], jobTitle="Engineer")

    async def work(source):
        return (
            await source.user(user["id"], ["id", "jobTitle", "manager"]),
            await source.user(user["userPrincipalName"].upper(), ["displayName"]),
            await source.user(boss["id"], ["id", "manager"]),
            await source.user("missing@contoso.test", ["id"]),
        )

    by_id, by_upn, no_manager, missing = run(graph_settings, work)
    assert by_id == {"id": user["id"], "jobTitle": "Engineer", "manager": {"id": boss["id"]}}
    assert by_upn == {"id": user["id"], "displayName": user["displayName"]}
    assert no_manager == {"id": boss["id"]}
    assert missing is None
    expanded = fake_graph.graph_requests(f"/users/{user['id']}")[0]
    assert expanded.query == {"$select": "id,jobTitle", "$expand": "manager($select=id)"}


def test_group_by_id_and_missing(fake_graph, graph_settings):
    group = fake_graph.tenant.add_group(displayName="Sales")

    async def work(source):
        return (
            await source.group(group["id"], ["id", "displayName", "members"]),
            await source.group("missing", ["id"]),
        )

    assert run(graph_settings, work) == ({"id": group["id"], "displayName": "Sales"}, None)


def test_source_outside_async_with():
    with pytest.raises(RuntimeError):
        GraphSource(GraphSettings()).client  # noqa: B018
