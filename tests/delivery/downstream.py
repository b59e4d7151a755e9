"""The SCIM target of the relay tests: a second bridge instance behind a recorder, and
helpers that create and read resources through it."""

from __future__ import annotations

from dataclasses import dataclass

from tests.conftest import ScimClient
from tests.factories import entra_user, patch
from tests.fakes.scim_recorder import ScimRecorder
from workers.context import context


@dataclass
class Downstream:
    """The target: an app, the recorder in front of it, its URL and SCIM token."""

    app: object
    recorder: ScimRecorder
    url: str
    secret: str

    @property
    def scim(self) -> ScimClient:
        """The target's own SCIM API, bypassing the recorder."""
        return ScimClient(self.app.test_client(), self.secret)

    def users(self) -> list[dict]:
        return self.scim.get("/Users").json["Resources"]

    def user(self, user_name: str) -> dict | None:
        found = self.scim.get("/Users", query_string={"filter": f'userName eq "{user_name}"'})
        resources = found.json["Resources"]
        assert len(resources) <= 1
        return resources[0] if resources else None

    def group(self, display_name: str) -> dict | None:
        found = self.scim.get(
            "/Groups", query_string={"filter": f'displayName eq "{display_name}"'}
        )
        resources = found.json["Resources"]
        return resources[0] if resources else None


def create_user(scim, **overrides) -> dict:
    response = scim.post("/Users", json=entra_user(**overrides))
    assert response.status_code == 201, response.json
    return response.json


def set_title(scim, user: dict, title: str) -> None:
    response = scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "title", "value": title})
    )
    assert response.status_code == 200


def remote_id(target: dict, kind: str, rid: str) -> str:
    return context().deliveries.states(target["id"], kind, [rid])[rid]["remote_id"]


def sorted_refs(target: dict, users: list[dict]) -> list[str]:
    return [remote_id(target, "user", u["id"]) for u in sorted(users, key=lambda u: u["id"])]
