"""The /api/v2 routes that Vagrant 2.4 and newer use, against Vagrant Cloud's field sets.

Vagrant 2.4 cannot be installed on the test machines, so these tests drive
the v2 paths as its client sends them: single-provider paths end in
``/:architecture`` and providers carry ``architecture`` and
``default_architecture``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from tests.boxes import build_box, sha256
from tests.conftest import Client, unique
from tests.publishing import wait_until_inspected
from tests.responses import (
    BOX_FIELDS,
    METADATA_PROVIDER_FIELDS,
    PROVIDER_FIELDS,
    VERSION_FIELDS,
    assert_error,
)


def v2_box(client: Client) -> str:
    name = unique("v2")
    response = client.post(
        "/api/v2/boxes", json={"box": {"username": client.username, "name": name}}
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == BOX_FIELDS
    return f"/api/v2/box/{client.username}/{name}"


def add_provider(
    client: Client, path: str, architecture: str, default: bool | None = None
) -> requests.Response:
    provider: dict = {"name": "libvirt", "architecture": architecture}
    if default is not None:
        provider["default_architecture"] = default
    return client.post(f"{path}/version/1.0.0/providers", json={"provider": provider})


def upload_v2(client: Client, path: str, architecture: str, content: bytes) -> None:
    target = client.get(f"{path}/version/1.0.0/provider/libvirt/{architecture}/upload")
    assert target.status_code == 200, target.text
    stored = requests.put(target.json()["upload_path"], data=content, timeout=30)
    assert stored.status_code == 200, stored.text
    # The provider is served, and listed with a download URL, once inspected.
    wait_until_inspected(client, path.split("/box/", 1)[1])


def test_v2_objects_have_vagrant_cloud_fields(user: Client) -> None:
    path = v2_box(user)

    version = user.post(f"{path}/versions", json={"version": {"version": "1.0.0"}})
    provider = add_provider(user, path, "amd64")
    fetched = user.get(f"{path}/version/1.0.0/provider/libvirt/amd64")
    box = user.get(path).json()

    assert set(version.json()) == VERSION_FIELDS
    assert set(provider.json()) == PROVIDER_FIELDS
    assert set(fetched.json()) == PROVIDER_FIELDS
    assert set(box["versions"][0]) == VERSION_FIELDS
    assert provider.json()["architecture"] == "amd64"
    assert provider.json()["default_architecture"] is True


def test_v2_keeps_architectures_of_one_provider_apart(user: Client, anonymous: Client) -> None:
    amd64_box, arm64_box = build_box(architecture="amd64"), build_box(architecture="arm64")
    path = v2_box(user)
    user.post(f"{path}/versions", json={"version": {"version": "1.0.0"}})
    add_provider(user, path, "amd64")
    second = add_provider(user, path, "arm64")
    upload_v2(user, path, "amd64", amd64_box)
    upload_v2(user, path, "arm64", arm64_box)
    user.put(f"{path}/version/1.0.0/release")

    amd64 = user.get(f"{path}/version/1.0.0/provider/libvirt/amd64").json()
    arm64 = user.get(f"{path}/version/1.0.0/provider/libvirt/arm64").json()
    v1_default = user.get(
        path.replace("/api/v2/", "/api/v1/") + "/version/1.0.0/provider/libvirt"
    ).json()
    metadata = anonymous.get(path.replace("/api/v2/box", ""))

    assert second.json()["default_architecture"] is False
    assert amd64["checksum"] == sha256(amd64_box)
    assert arm64["checksum"] == sha256(arm64_box)
    assert amd64["download_url"].endswith("/libvirt/amd64/vagrant.box")
    assert arm64["download_url"].endswith("/libvirt/arm64/vagrant.box")
    assert v1_default["architecture"] == "amd64"
    providers = metadata.json()["versions"][0]["providers"]
    assert [set(p) for p in providers] == [METADATA_PROVIDER_FIELDS] * 2
    assert [(p["architecture"], p["default_architecture"]) for p in providers] == [
        ("amd64", True),
        ("arm64", False),
    ]
    assert [p["checksum"] for p in providers] == [sha256(amd64_box), sha256(arm64_box)]


def test_v2_changes_default_architecture(user: Client) -> None:
    path = v2_box(user)
    user.post(f"{path}/versions", json={"version": {"version": "1.0.0"}})
    add_provider(user, path, "amd64")
    add_provider(user, path, "arm64")

    changed = user.put(
        f"{path}/version/1.0.0/provider/libvirt/arm64",
        json={"provider": {"default_architecture": True}},
    )

    providers = user.get(f"{path}/version/1.0.0").json()["providers"]

    assert changed.status_code == 200, changed.text
    assert changed.json()["default_architecture"] is True
    assert [(p["architecture"], p["default_architecture"]) for p in providers] == [
        ("amd64", False),
        ("arm64", True),
    ]


def test_v2_new_default_architecture_replaces_the_old(user: Client) -> None:
    path = v2_box(user)
    user.post(f"{path}/versions", json={"version": {"version": "1.0.0"}})
    add_provider(user, path, "amd64")

    add_provider(user, path, "arm64", default=True)
    providers = user.get(f"{path}/version/1.0.0").json()["providers"]

    assert [(p["architecture"], p["default_architecture"]) for p in providers] == [
        ("amd64", False),
        ("arm64", True),
    ]


def test_v2_delete_removes_only_that_architecture(user: Client) -> None:
    path = v2_box(user)
    user.post(f"{path}/versions", json={"version": {"version": "1.0.0"}})
    add_provider(user, path, "amd64")
    add_provider(user, path, "arm64")

    deleted = user.delete(f"{path}/version/1.0.0/provider/libvirt/arm64")
    left = user.get(f"{path}/version/1.0.0").json()["providers"]

    assert deleted.status_code == 200
    assert [(p["name"], p["architecture"]) for p in left] == [("libvirt", "amd64")]


def test_v2_duplicate_architecture_is_422(user: Client) -> None:
    path = v2_box(user)
    user.post(f"{path}/versions", json={"version": {"version": "1.0.0"}})
    add_provider(user, path, "amd64")

    assert_error(add_provider(user, path, "amd64"), 422, "already exists")


def test_v2_unknown_architecture_is_404(user: Client) -> None:
    path = v2_box(user)
    user.post(f"{path}/versions", json={"version": {"version": "1.0.0"}})
    add_provider(user, path, "amd64")

    response = user.get(f"{path}/version/1.0.0/provider/libvirt/ppc64le")

    assert_error(response, 404, "provider libvirt on ppc64le of version 1.0.0 not found")


def test_v2_direct_upload_with_architecture(user: Client) -> None:
    content = build_box(architecture="arm64")
    path = v2_box(user)
    user.post(f"{path}/versions", json={"version": {"version": "1.0.0"}})
    add_provider(user, path, "arm64")

    target = user.get(f"{path}/version/1.0.0/provider/libvirt/arm64/upload/direct").json()
    stored = requests.put(target["upload_path"], data=content, timeout=30)
    confirmed = user.put(target["callback"].removeprefix(user.api_url))

    assert set(target) == {"upload_path", "callback"}
    assert stored.status_code == 200
    assert confirmed.json()["architecture"] == "arm64"
    assert confirmed.json()["checksum"] == sha256(content)


def test_v2_account_and_authenticate(user: Client) -> None:
    v2_box(user)

    whoami = user.get("/api/v2/authenticate").json()
    account = user.get(f"/api/v2/user/{user.username}").json()

    assert whoami["user"]["username"] == user.username
    assert set(account) == {
        "username",
        "avatar_url",
        "profile_html",
        "profile_markdown",
        "boxes",
    }
    # Listed boxes leave out their versions, which the client loads from the box.
    assert [set(box) for box in account["boxes"]] == [BOX_FIELDS - {"versions"}]


def test_v2_provider_added_to_released_version_reaches_metadata(
    user: Client, anonymous: Client
) -> None:
    path = v2_box(user)
    user.post(f"{path}/versions", json={"version": {"version": "1.0.0"}})
    add_provider_with_url(user, path, "amd64")
    user.put(f"{path}/version/1.0.0/release")
    metadata_path = path.replace("/api/v2/box", "")
    before = anonymous.get(metadata_path).json()

    added = add_provider_with_url(user, path, "arm64", default=True)
    after = eventually(
        lambda: anonymous.get(metadata_path).json(),
        lambda metadata: len(metadata["versions"][0]["providers"]) == 2,
    )

    assert added.status_code == 200, added.text
    assert [p["architecture"] for p in before["versions"][0]["providers"]] == ["amd64"]
    assert [
        (p["architecture"], p["default_architecture"]) for p in after["versions"][0]["providers"]
    ] == [("amd64", False), ("arm64", True)]


def add_provider_with_url(
    client: Client, path: str, architecture: str, default: bool | None = None
) -> requests.Response:
    provider: dict = {
        "name": "libvirt",
        "architecture": architecture,
        "url": f"https://boxes.example/{architecture}.box",
    }
    if default is not None:
        provider["default_architecture"] = default
    return client.post(f"{path}/version/1.0.0/providers", json={"provider": provider})


def eventually(read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 10) -> Any:
    """Return the first result of ``read()`` that passes ``check``, or the last one.

    The gateway's metadata cache forgets a box when the data service's event
    arrives, a moment after the change.
    """
    deadline = time.monotonic() + timeout
    result = read()
    while not check(result) and time.monotonic() < deadline:
        time.sleep(0.05)
        result = read()
    return result
