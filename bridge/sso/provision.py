"""Provisioning from a validated sign-in: create or update the user in the directory.

Writes go through :class:`~bridge.scim.service.ResourceService`, the path SCIM pushes
take (one Lua transaction that also announces the change on the stream), so every
target in scope receives a JIT user exactly as it would a pushed one.

Matching, in order: the sign-in subject already linked (``tid``/``oid``), the Graph
reconciler's link for the object id (Graph's user ``id`` is the token's ``oid``), a user
whose ``externalId`` is the object id (tenants that map objectId to externalId), and,
when the IdP allows it, ``userName``. Never by e-mail. The object id is then linked for
both, so a later sign-in, Graph reconcile or SCIM push (matching on ``userName``) finds
the same record.

Keys::

    {p}:sso:subject        hash "{tid}:{oid}" (or "nameid:{idp}:{NameID}") -> user id
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis

from bridge import errors
from bridge.directory.ids import is_id
from bridge.directory.records import Directory
from bridge.directory.stored import Record
from bridge.graph.links import Links, text
from bridge.scim import urns
from bridge.scim.patch import PATCH_OP_URN
from bridge.scim.resource_types import ResourceType
from bridge.scim.service import ResourceService
from bridge.sso.idps import Idp

log = logging.getLogger(__name__)

USER_SCHEMA = urns.USER

CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
MS_CLAIMS = "http://schemas.microsoft.com/identity/claims/"
NAME = CLAIMS + "name"
GIVEN_NAME = CLAIMS + "givenname"
SURNAME = CLAIMS + "surname"
EMAIL = CLAIMS + "emailaddress"
DISPLAY_NAME = MS_CLAIMS + "displayname"
OBJECT_ID = MS_CLAIMS + "objectidentifier"
TENANT_ID = MS_CLAIMS + "tenantid"
GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
ROLES = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
GROUPS_OVERAGE = "http://schemas.microsoft.com/claims/groups.link"
"""Entra's claim names in a SAML assertion (its default claims for an enterprise app)."""

ENTERPRISE = urns.ENTERPRISE_USER

SAML_DEFAULTS = {
    "userName": NAME,
    "name.givenName": GIVEN_NAME,
    "name.familyName": SURNAME,
    "displayName": DISPLAY_NAME,
    "emails": EMAIL,
}
"""SCIM path → SAML claim, Entra's defaults; an IdP's ``claim_mapping`` overrides them."""

OIDC_DEFAULTS = {
    "userName": "preferred_username",
    "name.givenName": "given_name",
    "name.familyName": "family_name",
    "displayName": "name",
    "emails": "email",
}
"""SCIM path → ID token claim, Entra's defaults."""

EXTRA_PATHS = frozenset(
    {
        "externalId",
        "title",
        "nickName",
        "preferredLanguage",
        "locale",
        *(
            f"{ENTERPRISE}:{a}"
            for a in ("employeeNumber", "costCenter", "organization", "division", "department")
        ),
    }
)
"""Further single-valued SCIM paths a claim may be mapped to (``emails`` is the work e-mail)."""

MAPPABLE = frozenset(SAML_DEFAULTS) | EXTRA_PATHS


class Refused(Exception):
    """A valid sign-in that the directory will not take; ``reason`` as for Rejected."""

    def __init__(self, reason: str, detail: str, status: int = 403) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class Claims:
    """A sign-in's claims in the bridge's terms (SAML attributes or OIDC ID-token claims)."""

    user_name: str
    object_id: str | None = None
    tenant_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()
    groups_overage: bool = False
    extra: tuple[tuple[str, str], ...] = ()
    """(SCIM path, value) for the other attributes an IdP's claim mapping names."""

    def subject(self, idp: Idp, name_id: str) -> str:
        """The immutable key of this person at the IdP."""
        if self.object_id:
            return f"{self.tenant_id or idp.get('tenant_id') or ''}:{self.object_id}"
        return f"nameid:{idp.id}:{name_id}"


@dataclass(frozen=True)
class SignInResult:
    """What a sign-in did to the directory: the user, the action, memberships changed."""

    user_id: str
    action: str
    """``created``, ``updated``, ``unchanged`` (nothing differed) or ``kept`` (update mode)."""
    groups_added: tuple[str, ...] = ()
    groups_removed: tuple[str, ...] = ()


class Provisioner:
    """Creates or updates the user a sign-in names, and adds group memberships."""

    def __init__(
        self,
        directory: Directory,
        resource_types: dict[str, ResourceType],
        client: redis.Redis,
        prefix: str,
    ) -> None:
        self.directory = directory
        self.users = ResourceService(directory, resource_types["User"])
        self.groups = ResourceService(directory, resource_types["Group"])
        self.links = Links(client, prefix)
        self.redis = client
        self.subject_key = f"{prefix}:sso:subject"
        # the reconciler's links (bridge/graph/links.py): Graph id -> bridge id, and back
        self.graph_links_key = f"{prefix}:graph:link:user"
        self.graph_rlinks_key = f"{prefix}:graph:rlink:user"

    def provision(self, idp: Idp, claims: Claims, name_id: str) -> SignInResult:
        """Create or update the user; Refused for a disabled user or a conflict."""
        wanted_tenant = idp.get("tenant_id")
        if wanted_tenant and claims.tenant_id != wanted_tenant:
            raise Refused("tenant", "the sign-in is from another tenant")
        subject = claims.subject(idp, name_id)
        for attempt in range(2):
            record, linked = self._find(idp, claims, subject)
            if record is None:
                try:
                    created = self.users.create(user_body(claims))
                except errors.Conflict as exc:
                    if attempt == 0:
                        continue  # created meanwhile by a racing sign-in or a SCIM push
                    raise Refused("conflict", "userName is taken by an unlinked user", 409) from exc
                assert created.record is not None
                user_id, action = created.record.id, "created"
            else:
                if record.doc.get("active") is False:
                    raise Refused("disabled", "the user is disabled in the directory")
                user_id = record.id
                action = self._update(idp, claims, record, linked)
            self._link(subject, claims, user_id)
            added, removed = self._sync_groups(idp, claims, user_id)
            return SignInResult(user_id, action, added, removed)
        raise Refused("conflict", "the user changed while signing in; retry", 409)

    # --- matching --------------------------------------------------------------------------
    def _find(self, idp: Idp, claims: Claims, subject: str) -> tuple[Record | None, bool]:
        """The record standing for this person, and whether it was linked to the subject:
        every candidate key looked up in one round trip, the first that names a record
        (in matching order) read in a second."""
        lookups: list[tuple[str, str, str]] = [(self.subject_key, subject, "subject")]
        if claims.object_id:
            lookups.append((self.graph_links_key, claims.object_id, "graph"))
            lookups.append(
                (self.directory.index_key("user", "externalId"), claims.object_id, "externalId")
            )
        if idp.get("match_username", True):
            lookups.append(
                (self.directory.index_key("user", "userName"), claims.user_name.casefold(), "name")
            )
        pipe = self.redis.pipeline(transaction=False)
        for key, field, _ in lookups:
            pipe.hget(key, field)
        found = pipe.execute()
        candidates = [
            (text(rid), how) for rid, (_, _, how) in zip(found, lookups, strict=True) if rid
        ]
        if not candidates:
            return None, False
        ids = list(dict.fromkeys(rid for rid, _ in candidates if is_id(rid)))
        records = {r.id: r for r in self.directory.get_many("user", ids)}
        for rid, how in candidates:
            if rid not in records:
                continue
            if how == "name" and claims.object_id:
                # a user found by userName that stands for another Entra object is not this
                # person (a UPN given to someone else): never take over that account
                other = self.redis.hget(self.graph_rlinks_key, rid)
                if other is not None and text(other) != claims.object_id:
                    raise Refused("conflict", "the userName belongs to another Entra user", 409)
            return records[rid], how == "subject"
        return None, False

    def _link(self, subject: str, claims: Claims, user_id: str) -> None:
        """Link the subject, and the object id for the Graph reconciler unless it has one."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.subject_key, subject, user_id)
        if claims.object_id:
            pipe.hsetnx(self.graph_links_key, claims.object_id, user_id)
        created = pipe.execute()
        if claims.object_id and created[1]:
            self.redis.hset(self.graph_rlinks_key, user_id, claims.object_id)

    # --- writing ---------------------------------------------------------------------------
    def _update(self, idp: Idp, claims: Claims, record: Record, linked: bool) -> str:
        mode = idp.get("update", "each_login")
        if mode == "never" or (mode == "first_login" and linked):
            return "kept"
        ops = update_operations(record.doc, claims)
        if not ops:
            return "unchanged"
        try:
            outcome = self.users.patch(
                record.id, {"schemas": [PATCH_OP_URN], "Operations": ops}, None
            )
        except errors.Conflict as exc:
            raise Refused("conflict", "the new userName is taken by another user", 409) from exc
        return "updated" if outcome.changed else "unchanged"

    def _sync_groups(
        self, idp: Idp, claims: Claims, user_id: str
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Add the user to the directory groups the groups claim names (by Entra object id:
        the Graph link, else the group's externalId, which Entra sets to the object id);
        with ``groups_remove``, also take the user out of the groups that stand for Entra
        groups the claim does not name. Returns the group ids added and removed."""
        if not idp.get("groups", False):
            return (), ()
        if claims.groups_overage:
            log.info("groups overage claim for user %s: left to the next reconcile", user_id)
        if not claims.groups:
            return (), ()  # no claim (or an overage): nothing is known, nothing removed
        current = set(self.users.get(user_id, groups=True).groups or [])
        named = set(claims.groups)
        linked = self.links.bridge_ids("group", sorted(named))
        added: list[str] = []
        for object_id in claims.groups:
            gid = linked.get(object_id)
            if gid is None:
                found = self.directory.find("group", "unique", "externalId", object_id)
                gid = found[0].id if found else None
            if gid is None or gid in current or gid in added:
                continue
            if self._members(gid, "add", user_id):
                added.append(gid)
        removed: list[str] = []
        if idp.get("groups_remove", False) and current:
            ids = sorted(current)
            entra = self.links.graph_ids("group", ids)
            for group in self.directory.get_many("group", ids):
                entra_id: str | None = entra.get(group.id) or group.doc.get("externalId")
                if (
                    entra_id
                    and entra_id not in named
                    and self._members(group.id, "remove", user_id)
                ):
                    removed.append(group.id)
        return tuple(added), tuple(removed)

    def _members(self, gid: str, op: str, user_id: str) -> bool:
        """Add or remove one member through the SCIM write path; False if the group is gone."""
        operation: dict[str, Any] = {"op": op, "path": "members", "value": [{"value": user_id}]}
        if op == "remove":
            operation = {"op": "remove", "path": f'members[value eq "{user_id}"]'}
        try:
            self.groups.patch(gid, {"schemas": [PATCH_OP_URN], "Operations": [operation]}, None)
        except errors.NotFound:
            return False
        return True


def user_body(claims: Claims) -> dict[str, Any]:
    """A SCIM User for a first sign-in."""
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": claims.user_name, "active": True}
    name = {}
    if claims.given_name:
        name["givenName"] = claims.given_name
    if claims.family_name:
        name["familyName"] = claims.family_name
    if name:
        body["name"] = name
    if claims.display_name:
        body["displayName"] = claims.display_name
    if claims.email:
        body["emails"] = [{"value": claims.email, "type": "work", "primary": True}]
    for path, value in claims.extra:
        if path.startswith(ENTERPRISE + ":"):
            if ENTERPRISE not in body["schemas"]:
                body["schemas"].append(ENTERPRISE)
            body.setdefault(ENTERPRISE, {})[path.rsplit(":", 1)[1]] = value
        else:
            body[path] = value
    return body


def current_value(doc: dict[str, Any], path: str) -> object:
    """The value at one of EXTRA_PATHS in a stored document."""
    if path.startswith(ENTERPRISE + ":"):
        return (doc.get(ENTERPRISE) or {}).get(path.rsplit(":", 1)[1])
    return doc.get(path)


def update_operations(doc: dict[str, Any], claims: Claims) -> list[dict[str, Any]]:
    """PATCH operations that bring ``doc`` to what the claims say (only claims present)."""
    ops: list[dict[str, Any]] = []

    def replace(path: str, current: object, value: str | None) -> None:
        if value and value != current:
            ops.append({"op": "replace", "path": path, "value": value})

    replace("userName", doc.get("userName"), claims.user_name)
    name = doc.get("name") or {}
    replace("name.givenName", name.get("givenName"), claims.given_name)
    replace("name.familyName", name.get("familyName"), claims.family_name)
    replace("displayName", doc.get("displayName"), claims.display_name)
    for path, value in claims.extra:
        replace(path, current_value(doc, path), value)
    if claims.email:
        emails = doc.get("emails") or []
        work = [e for e in emails if e.get("type") == "work"]
        if not work:
            ops.append(
                {
                    "op": "add",
                    "path": "emails",
                    "value": [{"value": claims.email, "type": "work", "primary": True}],
                }
            )
        elif work[0].get("value") != claims.email:
            ops.append(
                {"op": "replace", "path": 'emails[type eq "work"].value', "value": claims.email}
            )
    return ops


def mapped(
    values: dict[str, str], defaults: dict[str, str], overrides: dict[str, str] | None
) -> tuple[dict[str, str | None], tuple[tuple[str, str], ...]]:
    """The core attributes and the extras, read from ``values`` (claim → first value) by
    the defaults with an IdP's ``claim_mapping`` (SCIM path → claim) over them."""
    mapping = {**defaults, **(overrides or {})}
    core = {path: values.get(mapping[path]) or None for path in defaults}
    extra = tuple(
        (path, value)
        for path, claim in sorted(mapping.items())
        if path not in defaults and (value := values.get(claim))
    )
    return core, extra


def saml_claims(
    name_id: str, attributes: dict[str, list[str]], overrides: dict[str, str] | None = None
) -> Claims:
    """Entra's SAML claims in the bridge's terms; ``userName`` from the ``name`` claim (the
    UPN), else the NameID. ``overrides``: the IdP's claim mapping."""
    firsts = {name: values[0] for name, values in attributes.items() if values}
    core, extra = mapped(firsts, SAML_DEFAULTS, overrides)
    groups = tuple(attributes.get(GROUPS, [])) + tuple(attributes.get(ROLES, []))
    return Claims(
        user_name=core["userName"] or name_id,
        object_id=firsts.get(OBJECT_ID),
        tenant_id=firsts.get(TENANT_ID),
        given_name=core["name.givenName"],
        family_name=core["name.familyName"],
        display_name=core["displayName"],
        email=core["emails"],
        groups=groups,
        groups_overage=GROUPS_OVERAGE in attributes,
        extra=extra,
    )
