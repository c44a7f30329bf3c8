"""Concurrent changes to one box run one after the other, as if sent in some order.

Each case sends its requests at the same moment, several rounds over, and
checks that the outcome is one that some order of the same requests gives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
import requests

from tests.conftest import Client, unique

ROUNDS = 12
SOURCE_URL = "https://boxes.example.com/base.box"


def at_once(*calls: Callable[[], requests.Response], stagger: float = 0.0) -> list[int]:
    """Send the calls together, each ``stagger`` seconds after the one before; return statuses."""
    barrier = threading.Barrier(len(calls))

    def run(position: int, call: Callable[[], requests.Response]) -> int:
        barrier.wait()
        time.sleep(position * stagger)
        return call().status_code

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, range(len(calls)), calls))


@pytest.fixture
def team(make_user: Any) -> dict[str, Any]:
    """An organization with a box, its owner and a member."""
    owner, member = make_user(), make_user()
    name = unique("org")
    assert owner.post("/api/v1/organizations", json={"name": name}).status_code == 200
    added = owner.put(
        f"/api/v1/organizations/{name}/members/{member.username}", json={"role": "member"}
    )
    assert added.status_code == 200, added.text
    box = owner.post("/api/v1/boxes", json={"username": name, "name": "base"})
    assert box.status_code == 200, box.text
    return {"owner": owner, "member": member, "box": f"/api/v1/box/{name}/base"}


def new_version(client: Client, box: str, number: int) -> str:
    """Create a version with one libvirt provider that serves a URL; return its path."""
    version = f"1.0.{number}"
    created = client.post(f"{box}/versions", json={"version": {"version": version}})
    assert created.status_code == 200, created.text
    provider = client.post(
        f"{box}/version/{version}/providers",
        json={"provider": {"name": "libvirt", "url": SOURCE_URL}},
    )
    assert provider.status_code == 200, provider.text
    return f"{box}/version/{version}"


def test_release_races_provider_delete(team: dict[str, Any]) -> None:
    member = team["member"]
    for number in range(ROUNDS):
        version = new_version(member, team["box"], number)

        released, deleted = at_once(
            partial(member.put, f"{version}/release"),
            partial(member.delete, f"{version}/provider/libvirt"),
        )
        after = member.get(version).json()

        # Released first, a member may no longer delete, and deleted first,
        # the version has nothing left to release.
        assert sorted([released, deleted]) in ([200, 403], [200, 422])
        if after["status"] == "active":
            assert len(after["providers"]) == 1


def test_concurrent_releases_one_succeeds(team: dict[str, Any]) -> None:
    owner = team["owner"]
    for number in range(ROUNDS):
        version = new_version(owner, team["box"], number)

        statuses = at_once(*[partial(owner.put, f"{version}/release")] * 3)

        assert sorted(statuses) == [200, 422, 422]


CHANGES: dict[str, Callable[[Client, str], requests.Response]] = {
    "describe version": lambda client, version: client.put(
        version, json={"version": {"description": "changed"}}
    ),
    "release": lambda client, version: client.put(f"{version}/release"),
    "change provider": lambda client, version: client.put(
        f"{version}/provider/libvirt", json={"provider": {"checksum_type": None}}
    ),
    "request upload": lambda client, version: client.get(f"{version}/provider/libvirt/upload"),
    "add provider": lambda client, version: client.post(
        f"{version}/providers", json={"provider": {"name": "vmware_desktop", "url": SOURCE_URL}}
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_change_racing_version_delete(team: dict[str, Any], change: str) -> None:
    owner = team["owner"]
    for number in range(ROUNDS):
        version = new_version(owner, team["box"], number)

        # The delete goes out up to 3 ms later, while the change is under way.
        changed, deleted = at_once(
            partial(CHANGES[change], owner, version),
            partial(owner.delete, version),
            stagger=(number % 4) / 1000,
        )

        assert deleted == 200
        assert changed in (200, 404)
        assert owner.get(version).status_code == 404


def test_removed_member_cannot_use_upload_url(team: dict[str, Any]) -> None:
    owner, member = team["owner"], team["member"]
    version = f"{team['box']}/version/1.0.0"
    member.post(f"{team['box']}/versions", json={"version": {"version": "1.0.0"}})
    member.post(f"{version}/providers", json={"provider": {"name": "libvirt"}})
    upload_url = member.get(f"{version}/provider/libvirt/upload").json()["upload_path"]
    organization = team["box"].split("/")[-2]

    removed = owner.delete(f"/api/v1/organizations/{organization}/members/{member.username}")
    response = requests.put(upload_url, data=b"a box file", timeout=30)

    assert removed.status_code == 200, removed.text
    assert response.status_code == 403
    assert "may no longer upload" in response.json()["errors"][0]
