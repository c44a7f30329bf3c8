"""Every actor against every box route, on public and private boxes.

Boxes live in an organization, whose owner, admin and member act on them,
and in a user's own namespace. A signed-in outsider and an anonymous client
try everything too. The expected status of each cell follows the rules in
``services.data.access``:

- anyone reads a public box and its released versions;
- unreleased versions, and everything of a private box, need a role;
- members publish (versions, and providers of unreleased versions);
- owners and admins also manage boxes and change released versions;
- a denied anonymous write is 401, a denied signed-in outsider gets 404 for
  a private box or an unreleased version and 403 otherwise, and a member
  short of a right gets 403.

Read routes share one box per namespace and visibility; each write cell
gets a fresh box, so no cell depends on another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.conftest import Client, unique
from tests.publishing import BOX_FILE, RpcPublisher, wait_until_inspected

READ = "read"
UNRELEASED = "read unreleased"
PUBLISH = "publish"
MANAGE = "manage"
RANK = {READ: 1, UNRELEASED: 2, PUBLISH: 3, MANAGE: 4}
ACTOR_LEVEL = {"owner": MANAGE, "admin": MANAGE, "member": PUBLISH}

ORGANIZATION_ACTORS = ("owner", "admin", "member", "outsider", "anonymous")
USER_ACTORS = ("owner", "outsider", "anonymous")
CELLS = [
    (namespace, actor, visibility)
    for namespace, actors in (("organization", ORGANIZATION_ACTORS), ("user", USER_ACTORS))
    for actor in actors
    for visibility in ("public", "private")
]
CELL_IDS = [f"{namespace}-{actor}-{visibility}" for namespace, actor, visibility in CELLS]


@dataclass
class World:
    clients: dict[str, dict[str, Client]]
    namespaces: dict[str, str]
    publisher: RpcPublisher
    shared: dict[tuple[str, str, str], str]

    def shared_box(self, namespace: str, visibility: str, purpose: str = "read") -> str:
        """Return the box that cells of one ``purpose`` share in a namespace and visibility."""
        key = (namespace, visibility, purpose)
        if key not in self.shared:
            self.shared[key] = self.fresh_box(namespace, visibility)
        return self.shared[key]

    def fresh_box(self, namespace: str, visibility: str) -> str:
        return self.publisher.released_box(self.namespaces[namespace], visibility == "private")


@pytest.fixture(scope="module")
def world(data_rpc: Any, suite: Any) -> World:
    tokens = {}
    for role in ("owner", "admin", "member", "outsider"):
        username = unique(role)
        data_rpc.create_user(username, None, None)
        tokens[role] = (username, data_rpc.issue_token(username, "matrix")["token"])
    organization = unique("org")
    data_rpc.create_organization(organization, tokens["owner"][0])
    data_rpc.add_member(organization, tokens["admin"][0], "admin")
    data_rpc.add_member(organization, tokens["member"][0], "member")

    def client(role: str) -> Client:
        if role == "anonymous":
            return Client(suite.api_url, "", None)
        username, token = tokens[role]
        return Client(suite.api_url, username, token)

    owner_actor = data_rpc.authenticate(tokens["owner"][1])["actor"]
    return World(
        clients={
            "organization": {role: client(role) for role in ORGANIZATION_ACTORS},
            "user": {role: client(role) for role in USER_ACTORS},
        },
        namespaces={"organization": organization, "user": tokens["owner"][0]},
        publisher=RpcPublisher(data_rpc, suite.binstore_url, owner_actor),
        shared={},
    )


def allowed(actor: str, needs: str, visibility: str) -> bool:
    level = ACTOR_LEVEL.get(actor)
    if level is not None and RANK[level] >= RANK[needs]:
        return True
    return needs == READ and visibility == "public"


def denial(actor: str, needs: str, visibility: str, writes: bool, hides: bool = True) -> int:
    if writes and actor == "anonymous":
        return 401
    if actor in ACTOR_LEVEL:
        return 403
    if hides and (visibility == "private" or needs == UNRELEASED):
        return 404
    return 403


# Routes and what they need. Each call gets the acting client, the box's tag
# and what ``prepare`` returned, which the owner's client ran on the box first.

Call = Callable[[Client, str, Any], requests.Response]
Prepare = Callable[[Client, str], Any]


@dataclass(frozen=True)
class Route:
    name: str
    needs: str
    call: Call
    status: int = 200
    prepare: Prepare | None = None

    @property
    def writes(self) -> bool:
        return self.needs in (PUBLISH, MANAGE)


def box_path(tag: str, api: str = "v1") -> str:
    return f"/api/{api}/box/{tag}"


def download_path(tag: str, version: str) -> str:
    namespace, name = tag.split("/")
    return f"/{namespace}/boxes/{name}/versions/{version}/providers/libvirt/unknown/vagrant.box"


def upload_directly(owner: Client, tag: str) -> str:
    """Upload 2.0.0's file as the owner, the way a direct upload does; return the callback."""
    target = owner.get(f"{box_path(tag)}/version/2.0.0/provider/libvirt/upload/direct").json()
    stored = requests.put(target["upload_path"], data=BOX_FILE, timeout=30)
    assert stored.status_code == 200, stored.text
    # Inspection changes the provider; let it finish before any snapshot.
    wait_until_inspected(owner, tag)
    return str(target["callback"]).removeprefix(owner.api_url)


READ_ROUTES = [
    Route("GET box v1", READ, lambda c, t, _: c.get(box_path(t))),
    Route("GET box v2", READ, lambda c, t, _: c.get(box_path(t, "v2"))),
    Route("GET released version", READ, lambda c, t, _: c.get(f"{box_path(t)}/version/1.0.0")),
    Route(
        "GET released version v2",
        READ,
        lambda c, t, _: c.get(f"{box_path(t, 'v2')}/version/1.0.0"),
    ),
    Route(
        "GET provider v1",
        READ,
        lambda c, t, _: c.get(f"{box_path(t)}/version/1.0.0/provider/libvirt"),
    ),
    Route(
        "GET provider v2",
        READ,
        lambda c, t, _: c.get(f"{box_path(t, 'v2')}/version/1.0.0/provider/libvirt/unknown"),
    ),
    Route(
        "GET metadata",
        READ,
        lambda c, t, _: c.get(f"/{t}", headers={"Accept": "application/json"}),
    ),
    Route("HEAD metadata", READ, lambda c, t, _: c.request("HEAD", f"/{t}")),
    Route(
        "GET download",
        READ,
        lambda c, t, _: c.get(download_path(t, "1.0.0"), allow_redirects=False),
        status=302,
    ),
    Route("GET download counts", READ, lambda c, t, _: c.get(f"{box_path(t)}/downloads")),
    Route(
        "GET unreleased version",
        UNRELEASED,
        lambda c, t, _: c.get(f"{box_path(t)}/version/2.0.0"),
    ),
    Route(
        "GET provider of unreleased version",
        UNRELEASED,
        lambda c, t, _: c.get(f"{box_path(t, 'v2')}/version/2.0.0/provider/libvirt/unknown"),
    ),
    Route(
        "GET download of unreleased version",
        UNRELEASED,
        lambda c, t, _: c.get(download_path(t, "2.0.0"), allow_redirects=False),
        status=302,
    ),
]

WRITE_ROUTES = [
    Route(
        "POST version",
        PUBLISH,
        lambda c, t, _: c.post(f"{box_path(t)}/versions", json={"version": {"version": "3.0"}}),
    ),
    Route(
        "PUT unreleased version",
        PUBLISH,
        lambda c, t, _: c.put(
            f"{box_path(t)}/version/2.0.0", json={"version": {"version": "2.0.1"}}
        ),
    ),
    Route(
        "PUT description of released version",
        PUBLISH,
        lambda c, t, _: c.put(
            f"{box_path(t)}/version/1.0.0", json={"version": {"description": "Fixed notes"}}
        ),
    ),
    Route(
        "DELETE unreleased version",
        PUBLISH,
        lambda c, t, _: c.delete(f"{box_path(t)}/version/2.0.0"),
    ),
    Route(
        "PUT release",
        PUBLISH,
        lambda c, t, _: c.put(f"{box_path(t)}/version/2.0.0/release"),
    ),
    Route("PUT revoke", PUBLISH, lambda c, t, _: c.put(f"{box_path(t)}/version/1.0.0/revoke")),
    Route(
        "POST provider to unreleased version",
        PUBLISH,
        lambda c, t, _: c.post(
            f"{box_path(t)}/version/2.0.0/providers", json={"provider": {"name": "virtualbox"}}
        ),
    ),
    Route(
        "PUT provider of unreleased version v1",
        PUBLISH,
        lambda c, t, _: c.put(
            f"{box_path(t)}/version/2.0.0/provider/libvirt",
            json={"provider": {"url": "https://boxes.example/a.box"}},
        ),
    ),
    Route(
        "PUT provider of unreleased version v2",
        PUBLISH,
        lambda c, t, _: c.put(
            f"{box_path(t, 'v2')}/version/2.0.0/provider/libvirt/unknown",
            json={"provider": {"architecture": "amd64"}},
        ),
    ),
    Route(
        "DELETE provider of unreleased version v1",
        PUBLISH,
        lambda c, t, _: c.delete(f"{box_path(t)}/version/2.0.0/provider/libvirt"),
    ),
    Route(
        "DELETE provider of unreleased version v2",
        PUBLISH,
        lambda c, t, _: c.delete(f"{box_path(t, 'v2')}/version/2.0.0/provider/libvirt/unknown"),
    ),
    Route(
        "GET upload of unreleased version",
        PUBLISH,
        lambda c, t, _: c.get(f"{box_path(t)}/version/2.0.0/provider/libvirt/upload"),
    ),
    Route(
        "GET direct upload of unreleased version",
        PUBLISH,
        lambda c, t, _: c.get(f"{box_path(t)}/version/2.0.0/provider/libvirt/upload/direct"),
    ),
    Route(
        "GET upload of unreleased version v2",
        PUBLISH,
        lambda c, t, _: c.get(f"{box_path(t, 'v2')}/version/2.0.0/provider/libvirt/unknown/upload"),
    ),
    Route(
        "PUT direct upload callback",
        PUBLISH,
        lambda c, t, callback: c.put(callback),
        prepare=upload_directly,
    ),
    Route(
        "PUT box",
        MANAGE,
        lambda c, t, _: c.put(box_path(t), json={"short_description": "Changed"}),
    ),
    Route("DELETE box", MANAGE, lambda c, t, _: c.delete(box_path(t))),
    Route(
        "DELETE released version",
        MANAGE,
        lambda c, t, _: c.delete(f"{box_path(t)}/version/1.0.0"),
    ),
    Route(
        "POST provider to released version",
        MANAGE,
        lambda c, t, _: c.post(
            f"{box_path(t)}/version/1.0.0/providers", json={"provider": {"name": "virtualbox"}}
        ),
    ),
    Route(
        "PUT provider of released version",
        MANAGE,
        lambda c, t, _: c.put(
            f"{box_path(t)}/version/1.0.0/provider/libvirt",
            json={"provider": {"url": "https://boxes.example/b.box"}},
        ),
    ),
    Route(
        "DELETE provider of released version",
        MANAGE,
        lambda c, t, _: c.delete(f"{box_path(t, 'v2')}/version/1.0.0/provider/libvirt/unknown"),
    ),
    Route(
        "GET upload of released version",
        MANAGE,
        lambda c, t, _: c.get(f"{box_path(t)}/version/1.0.0/provider/libvirt/upload"),
    ),
]


def assert_answer(response: requests.Response, expected: int) -> None:
    assert response.status_code == expected, response.text
    # A response to HEAD has the status and headers but no body.
    if expected >= 400 and response.request.method != "HEAD":
        body = response.json()
        assert body["success"] is False
        assert body["errors"]


@pytest.mark.parametrize(("namespace", "actor", "visibility"), CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("route", READ_ROUTES, ids=lambda route: route.name)
def test_read_route(
    world: World, route: Route, namespace: str, actor: str, visibility: str
) -> None:
    tag = world.shared_box(namespace, visibility)
    clients = world.clients[namespace]

    response = route.call(clients[actor], tag, None)

    if allowed(actor, route.needs, visibility):
        assert_answer(response, route.status)
    else:
        assert_answer(response, denial(actor, route.needs, visibility, writes=False))


@pytest.mark.parametrize(("namespace", "actor", "visibility"), CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("route", WRITE_ROUTES, ids=lambda route: route.name)
def test_write_route(
    world: World, route: Route, namespace: str, actor: str, visibility: str
) -> None:
    permitted = allowed(actor, route.needs, visibility)
    # A permitted write changes its box, so it gets a fresh one; denied writes
    # share one, and each asserts that it left the box unchanged.
    if permitted:
        tag = world.fresh_box(namespace, visibility)
    else:
        tag = world.shared_box(namespace, visibility, "denied writes")
    owner = world.clients[namespace]["owner"]
    prepared = route.prepare(owner, tag) if route.prepare else None
    before = owner.get(box_path(tag)).json()

    response = route.call(world.clients[namespace][actor], tag, prepared)
    after = owner.get(box_path(tag))

    if permitted:
        assert_answer(response, route.status)
    else:
        assert_answer(response, denial(actor, route.needs, visibility, writes=True))
        assert after.status_code == 200
        assert after.json() == before


@pytest.mark.parametrize(("namespace", "actor", "visibility"), CELLS, ids=CELL_IDS)
def test_box_create(world: World, namespace: str, actor: str, visibility: str) -> None:
    owner_namespace = world.namespaces[namespace]
    name = unique("new")

    response = world.clients[namespace][actor].post(
        "/api/v1/boxes",
        json={"username": owner_namespace, "name": name, "is_private": visibility == "private"},
    )
    stored = world.clients[namespace]["owner"].get(f"/api/v1/box/{owner_namespace}/{name}")

    if allowed(actor, MANAGE, visibility):
        assert_answer(response, 200)
        assert stored.status_code == 200
    else:
        assert_answer(response, denial(actor, MANAGE, visibility, writes=True, hides=False))
        assert stored.status_code == 404


@pytest.mark.parametrize(("namespace", "actor", "visibility"), CELLS, ids=CELL_IDS)
def test_listings_show_what_the_actor_may_read(
    world: World, namespace: str, actor: str, visibility: str
) -> None:
    tag = world.shared_box(namespace, visibility)
    owner_namespace, name = tag.split("/")
    client = world.clients[namespace][actor]

    account = client.get(f"/api/v1/user/{owner_namespace}").json()
    search = client.get("/api/v1/search", params={"q": name}).json()
    box = client.get(box_path(tag))

    listed = [box["name"] for box in account["boxes"]]
    found = [box["tag"] for box in search["boxes"]]
    readable = allowed(actor, READ, visibility)
    insider = allowed(actor, UNRELEASED, visibility)
    assert (name in listed) is readable
    assert (tag in found) is readable
    if readable:
        versions = [version["version"] for version in box.json()["versions"]]
        assert ("2.0.0" in versions) is insider
        assert "1.0.0" in versions
