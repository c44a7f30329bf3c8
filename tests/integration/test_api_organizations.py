"""Organizations and their members through ``/api/v1/organizations``."""

from __future__ import annotations

from typing import Any

import pytest

from services.toolkit.errors import Unprocessable
from tests.conftest import Client, unique
from tests.publishing import api_publish
from tests.responses import assert_error


def create_organization(client: Client) -> str:
    name = unique("org")
    response = client.post("/api/v1/organizations", json={"name": name})
    assert response.status_code == 200, response.text
    return name


def set_role(client: Client, organization: str, username: str, role: str) -> Any:
    return client.put(
        f"/api/v1/organizations/{organization}/members/{username}", json={"role": role}
    )


def roles(client: Client, organization: str) -> dict[str, str]:
    response = client.get(f"/api/v1/organizations/{organization}")
    assert response.status_code == 200, response.text
    return {member["username"]: member["role"] for member in response.json()["members"]}


@pytest.fixture
def team(make_user: Any) -> dict[str, Any]:
    """An organization with an owner, an admin and a member, and an outsider."""
    owner, admin, member, outsider = (make_user() for _ in range(4))
    organization = create_organization(owner)
    assert set_role(owner, organization, admin.username, "admin").status_code == 200
    assert set_role(owner, organization, member.username, "member").status_code == 200
    return {
        "name": organization,
        "owner": owner,
        "admin": admin,
        "member": member,
        "outsider": outsider,
    }


def test_creator_becomes_owner(user: Client) -> None:
    name = unique("org")

    created = user.post("/api/v1/organizations", json={"organization": {"name": name}})
    mine = user.get("/api/v1/organizations").json()["organizations"]

    assert created.status_code == 200, created.text
    assert created.json()["username"] == name
    assert [(m["username"], m["role"]) for m in created.json()["members"]] == [
        (user.username, "owner")
    ]
    assert [(m["organization"], m["role"]) for m in mine] == [(name, "owner")]


def test_organization_name_taken_is_409(user: Client) -> None:
    assert_error(
        user.post("/api/v1/organizations", json={"name": user.username.upper()}),
        409,
        "already taken",
    )


def test_organization_with_invalid_name_is_422(user: Client) -> None:
    assert_error(user.post("/api/v1/organizations", json={"name": "a/b"}), 422, "name")


@pytest.mark.parametrize("name", ["health", "API", "openapi.json"])
def test_route_names_are_reserved(user: Client, name: str) -> None:
    assert_error(user.post("/api/v1/organizations", json={"name": name}), 422, "is reserved")


def test_anonymous_cannot_create_organization(anonymous: Client) -> None:
    assert_error(
        anonymous.post("/api/v1/organizations", json={"name": unique("org")}),
        401,
        "authentication required",
    )


def test_members_list_is_for_members(team: dict, anonymous: Client) -> None:
    path = f"/api/v1/organizations/{team['name']}"

    assert roles(team["member"], team["name"]) == {
        team["owner"].username: "owner",
        team["admin"].username: "admin",
        team["member"].username: "member",
    }
    assert_error(team["outsider"].get(path), 403, "is not a member")
    assert_error(anonymous.get(path), 401, "authentication required")


def test_unknown_organization_is_404(user: Client) -> None:
    assert_error(user.get("/api/v1/organizations/no-such-org"), 404, "not found")
    assert_error(user.get(f"/api/v1/organizations/{user.username}"), 404, "not found")


def test_admin_adds_and_removes_members(team: dict, make_user: Any) -> None:
    newcomer = make_user()

    added = set_role(team["admin"], team["name"], newcomer.username, "member")
    promoted = set_role(team["admin"], team["name"], newcomer.username, "admin")
    removed = team["admin"].delete(
        f"/api/v1/organizations/{team['name']}/members/{newcomer.username}"
    )

    assert added.json()["role"] == "member"
    assert promoted.json()["role"] == "admin"
    assert removed.status_code == 200
    assert newcomer.username not in roles(team["owner"], team["name"])


def test_member_cannot_manage_members(team: dict, make_user: Any) -> None:
    newcomer = make_user()

    added = set_role(team["member"], team["name"], newcomer.username, "member")
    removed = team["member"].delete(
        f"/api/v1/organizations/{team['name']}/members/{team['admin'].username}"
    )

    assert_error(added, 403, "may not manage members")
    assert_error(removed, 403, "may not remove members")
    assert newcomer.username not in roles(team["owner"], team["name"])


def test_outsider_cannot_add_themselves(team: dict) -> None:
    response = set_role(team["outsider"], team["name"], team["outsider"].username, "owner")

    assert_error(response, 403, "is not a member")


def test_only_owners_touch_the_owner_role(team: dict) -> None:
    organization = team["name"]

    grant = set_role(team["admin"], organization, team["member"].username, "owner")
    demote = set_role(team["admin"], organization, team["owner"].username, "member")
    remove = team["admin"].delete(
        f"/api/v1/organizations/{organization}/members/{team['owner'].username}"
    )
    granted_by_owner = set_role(team["owner"], organization, team["member"].username, "owner")

    assert_error(grant, 403, "ask an owner")
    assert_error(demote, 403, "ask an owner")
    assert_error(remove, 403, "ask an owner")
    assert granted_by_owner.json()["role"] == "owner"


def test_last_owner_cannot_leave_or_step_down(team: dict) -> None:
    organization = team["name"]
    owner = team["owner"]

    step_down = set_role(owner, organization, owner.username, "admin")
    leave = owner.delete(f"/api/v1/organizations/{organization}/members/{owner.username}")
    set_role(owner, organization, team["admin"].username, "owner")
    leave_after_successor = owner.delete(
        f"/api/v1/organizations/{organization}/members/{owner.username}"
    )

    assert_error(step_down, 422, "last owner")
    assert_error(leave, 422, "last owner")
    assert leave_after_successor.status_code == 200
    assert roles(team["admin"], organization)[team["admin"].username] == "owner"


def test_member_may_leave(team: dict) -> None:
    member = team["member"]

    left = member.delete(f"/api/v1/organizations/{team['name']}/members/{member.username}")

    assert left.status_code == 200
    assert member.username not in roles(team["owner"], team["name"])


def test_invalid_role_and_unknown_user(team: dict) -> None:
    organization = team["name"]

    bad_role = set_role(team["owner"], organization, team["outsider"].username, "boss")
    unknown_user = set_role(team["owner"], organization, "no-such-user", "member")
    organization_as_member = set_role(team["owner"], organization, organization, "member")
    not_member = team["owner"].delete(
        f"/api/v1/organizations/{organization}/members/{team['outsider'].username}"
    )

    assert_error(bad_role, 422, "role: Input should be 'owner', 'admin' or 'member'")
    assert_error(unknown_user, 404, "user 'no-such-user' not found")
    assert_error(organization_as_member, 404, "not found")
    assert_error(not_member, 404, "is not a member")


def test_membership_grants_and_removal_revokes_private_access(team: dict) -> None:
    tag = api_publish(team["owner"], team["name"], private=True)
    newcomer = team["outsider"]

    before = newcomer.get(f"/api/v1/box/{tag}")
    set_role(team["owner"], team["name"], newcomer.username, "member")
    during = newcomer.get(f"/api/v1/box/{tag}")
    newcomer.delete(f"/api/v1/organizations/{team['name']}/members/{newcomer.username}")
    after = newcomer.get(f"/{tag}")

    assert before.status_code == 404
    assert during.status_code == 200
    assert after.status_code == 404


def test_operator_cannot_demote_last_owner(data_rpc: Any, user: Client) -> None:
    organization = create_organization(user)

    with pytest.raises(Unprocessable, match="last owner"):
        data_rpc.add_member(organization, user.username, "member")

    assert roles(user, organization) == {user.username: "owner"}
