"""The benchmark scenarios: what each connection sends, and the data seeded beforehand."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

import orjson
import redis

from bench import entra
from bench.loadgen import Request, Response, VirtualUser, VirtualUserFactory
from bridge.scim.resource_types import ResourceType

USERS = "/scim/v2/Users"
GROUPS = "/scim/v2/Groups"

GROUP_BATCH = 100
"""Members added by one PATCH in the group scenario."""

CYCLE_GROUP_MEMBERS = 150
"""Members added to the new group in the mixed Entra cycle."""


LOOKUP_POOL = 5000
"""Users the lookup scenario looks up."""

MEMBER_POOL = 10_000
"""Users the group scenarios add as members."""


class Seeder(Protocol):
    """Creates the users and groups a scenario needs before it is timed; returns their ids."""

    def users(self, tags: list[str]) -> list[str]: ...

    def groups(self, tags: list[str]) -> list[str]: ...


@dataclass
class Context:
    """What scenarios need to seed data and name things uniquely."""

    redis: redis.Redis | None
    users: ResourceType
    groups: ResourceType
    run_tag: str
    seq: itertools.count
    member_pool: list[str] | None = None
    seeder: Seeder | None = None
    """How to seed; None: the bridge's own write path, in process, into ``redis``."""
    lookup_pool: int = LOOKUP_POOL
    member_pool_size: int = MEMBER_POOL

    def tags(self, kind: str, n: int) -> list[str]:
        base = next(self.seq)
        return [f"{self.run_tag}-{kind}{base}-{i}" for i in range(n)]

    def seed_users(self, tags: list[str]) -> list[str]:
        if self.seeder is not None:
            return self.seeder.users(tags)
        assert self.redis is not None
        return entra.seed_users(self.redis, self.users, tags)

    def seed_groups(self, tags: list[str]) -> list[str]:
        if self.seeder is not None:
            return self.seeder.groups(tags)
        assert self.redis is not None
        return entra.seed_groups(self.redis, self.groups, tags)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    requests_per_second_cap: int
    """Upper bound on the rate the request cap is sized for (safety bound, not a target)."""
    prepare: Callable[[Context, int, int], VirtualUserFactory]
    """(context, concurrency, requests per connection) -> factory of virtual users."""
    single_user: bool = True
    """Whether every request is about one user (the p99 target applies)."""


def lookup_path(name: str) -> str:
    expression = 'userName eq "' + name + '"'
    return f"{USERS}?filter={quote(expression)}"


# --- ceiling ------------------------------------------------------------------------------


def _ceiling(ctx: Context, concurrency: int, per_conn: int) -> VirtualUserFactory:
    assert ctx.redis is not None
    ctx.redis.set("bench:ceiling", orjson.dumps({"id": "x" * 36, "userName": "y" * 40}))

    def vu(number: int) -> VirtualUser:
        request = Request("GET", "/ceiling", label="ceiling GET")
        while True:
            yield request

    return vu


# --- create -------------------------------------------------------------------------------


def _create(ctx: Context, concurrency: int, per_conn: int) -> VirtualUserFactory:
    prefix = ctx.tags("c", 1)[0]

    def vu(number: int) -> VirtualUser:
        for i in range(per_conn):
            body = entra.dumps(entra.entra_user(f"{prefix}-{number}-{i}"))
            yield Request("POST", USERS, body, "POST /Users", (201,))

    return vu


# --- lookup -------------------------------------------------------------------------------


def _lookup(ctx: Context, concurrency: int, per_conn: int) -> VirtualUserFactory:
    tags = ctx.tags("l", ctx.lookup_pool)
    ctx.seed_users(tags)
    paths = [lookup_path(entra.user_name(t)) for t in tags]

    def vu(number: int) -> VirtualUser:
        step = 7919  # prime: each connection walks the pool in its own order
        for i in range(per_conn):
            yield Request("GET", paths[(number * 613 + i * step) % len(paths)], label="GET filter")

    return vu


# --- patch user ---------------------------------------------------------------------------

PATCH_USERS_PER_CONNECTION = 50


def _patch_user(ctx: Context, concurrency: int, per_conn: int) -> VirtualUserFactory:
    n = PATCH_USERS_PER_CONNECTION
    ids = ctx.seed_users(ctx.tags("p", n * concurrency))

    def vu(number: int) -> VirtualUser:
        mine = ids[number * n : (number + 1) * n]
        for i in range(per_conn):
            body = entra.dumps(entra.user_update(i // n))
            yield Request("PATCH", f"{USERS}/{mine[i % n]}", body, "PATCH user")

    return vu


# --- group +100 members -------------------------------------------------------------------


def _member_pool(ctx: Context) -> list[str]:
    if ctx.member_pool is None:
        ctx.member_pool = ctx.seed_users(ctx.tags("m", ctx.member_pool_size))
    return ctx.member_pool


def _group_add(ctx: Context, concurrency: int, per_conn: int) -> VirtualUserFactory:
    pool = _member_pool(ctx)
    chunks = len(pool) // GROUP_BATCH
    per_group = chunks  # each group receives every chunk once: always 100 new members
    groups_per_conn = math.ceil(per_conn / per_group)
    groups = ctx.seed_groups(ctx.tags("g", groups_per_conn * concurrency))

    def vu(number: int) -> VirtualUser:
        mine = groups[number * groups_per_conn : (number + 1) * groups_per_conn]
        for i in range(per_conn):
            group = mine[i // per_group]
            chunk = (i + number * 7) % chunks
            ids = pool[chunk * GROUP_BATCH : (chunk + 1) * GROUP_BATCH]
            body = entra.dumps(entra.add_members(ids))
            yield Request("PATCH", f"{GROUPS}/{group}", body, "PATCH group +100", (204,))

    return vu


# --- mixed Entra cycle --------------------------------------------------------------------


def _mixed(ctx: Context, concurrency: int, per_conn: int) -> VirtualUserFactory:
    """Entra's provisioning cycle for a new user, then a new group with 150 members."""
    pool = _member_pool(ctx)
    prefix = ctx.tags("x", 1)[0]
    windows = len(pool) // CYCLE_GROUP_MEMBERS

    def vu(number: int) -> VirtualUser:
        for i in range(per_conn):
            tag = f"{prefix}-{number}-{i}"
            name = entra.user_name(tag)
            response: Response = yield Request("GET", lookup_path(name), label="GET filter (0)")
            response = yield Request(
                "POST", USERS, entra.dumps(entra.entra_user(tag)), "POST /Users", (201,)
            )
            if response.status != 201:
                continue
            uid = orjson.loads(response.body)["id"]
            yield Request("GET", lookup_path(name), label="GET filter (1)")
            yield Request(
                "PATCH", f"{USERS}/{uid}", entra.dumps(entra.user_update(i)), "PATCH user"
            )
            yield Request("PATCH", f"{USERS}/{uid}", entra.dumps(entra.disable()), "PATCH disable")
            response = yield Request(
                "POST", GROUPS, entra.dumps(entra.entra_group(tag)), "POST /Groups", (201,)
            )
            if response.status != 201:
                continue
            gid = orjson.loads(response.body)["id"]
            w = (number * 31 + i) % windows
            ids = pool[w * CYCLE_GROUP_MEMBERS : (w + 1) * CYCLE_GROUP_MEMBERS]
            yield Request(
                "PATCH",
                f"{GROUPS}/{gid}",
                entra.dumps(entra.add_members(ids)),
                "PATCH group +150",
                (204,),
            )

    return vu


CEILING = Scenario("ceiling", "ceiling: bare Flask + 1 Redis GET", 30_000, _ceiling)
SCENARIOS = {
    s.name: s
    for s in (
        Scenario("create", "create user (POST /Users)", 10_000, _create),
        Scenario("lookup", 'lookup (filter userName eq "...")', 20_000, _lookup),
        Scenario("patch_user", "PATCH user (Entra Replace)", 10_000, _patch_user),
        Scenario("group_add100", "PATCH group: add 100 members", 2_000, _group_add, False),
        Scenario("mixed", "mixed Entra cycle (7 requests)", 10_000, _mixed, False),
    )
}

TARGETS = {
    "create": 800,
    "lookup": 1500,
    "patch_user": 1200,
    "group_add100": 250,
    "mixed": 700,
}
"""Requests per second wanted at concurrency 8."""

P99_TARGET_MS = 50.0
"""Wanted p99 for single-user requests."""
