"""Downloads of private boxes and the counts of downloads per box and provider."""

from __future__ import annotations

import requests

from tests.conftest import Client
from tests.publishing import BOX_FILE, api_publish
from tests.responses import assert_error


def provider_url(client: Client, tag: str) -> str:
    metadata = client.get(f"/{tag}", headers={"Accept": "application/json"})
    assert metadata.status_code == 200, metadata.text
    return str(metadata.json()["versions"][0]["providers"][0]["url"])


def test_private_box_downloads_with_token_only(user: Client, anonymous: Client) -> None:
    tag = api_publish(user, user.username, private=True)
    url = provider_url(user, tag)

    with_header = user.session.get(url, timeout=30)
    with_parameter = requests.get(url, params={"access_token": user.token}, timeout=30)
    without = requests.get(url, timeout=30)
    metadata_without = anonymous.get(f"/{tag}")

    assert url.startswith(user.api_url)
    assert with_header.content == BOX_FILE
    assert with_parameter.content == BOX_FILE
    assert_error(without, 404, f"box {tag} not found")
    assert_error(metadata_without, 404, f"box {tag} not found")


def test_download_counts_per_box_and_provider(user: Client, anonymous: Client) -> None:
    tag = api_publish(user, user.username, versions=("1.0.0", "1.1.0"))
    namespace, name = tag.split("/")

    def download(version: str) -> None:
        path = f"/{namespace}/boxes/{name}/versions/{version}/providers/libvirt/unknown/vagrant.box"
        assert anonymous.get(path, allow_redirects=False).status_code == 302

    for version in ("1.0.0", "1.1.0", "1.1.0"):
        download(version)
    counts = anonymous.get(f"/api/v1/box/{tag}/downloads").json()
    box = anonymous.get(f"/api/v1/box/{tag}").json()

    assert counts["downloads"] == 3
    assert box["downloads"] == 3
    assert [(v["version"], v["downloads"]) for v in counts["versions"]] == [
        ("1.1.0", 2),
        ("1.0.0", 1),
    ]
    assert counts["versions"][0]["providers"] == [
        {"name": "libvirt", "architecture": "unknown", "downloads": 2}
    ]


def test_head_of_download_is_not_counted(user: Client, anonymous: Client) -> None:
    tag = api_publish(user, user.username)
    url = provider_url(anonymous, tag)

    probe = requests.head(url, timeout=30)
    counts = anonymous.get(f"/api/v1/box/{tag}/downloads").json()

    assert probe.status_code == 302
    assert counts["downloads"] == 0


def test_resumed_download_is_not_counted(user: Client, anonymous: Client) -> None:
    tag = api_publish(user, user.username)
    url = provider_url(anonymous, tag)

    resumed = requests.get(url, headers={"Range": "bytes=100-"}, timeout=30)
    tail = requests.get(url, headers={"Range": "bytes=-100"}, timeout=30)
    counts_after_resume = anonymous.get(f"/api/v1/box/{tag}/downloads").json()
    started = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    counts_after_start = anonymous.get(f"/api/v1/box/{tag}/downloads").json()

    assert resumed.status_code == 206
    assert resumed.content == BOX_FILE[100:]
    assert tail.content == BOX_FILE[-100:]
    assert counts_after_resume["downloads"] == 0
    assert started.content == BOX_FILE[:100]
    assert counts_after_start["downloads"] == 1


def test_download_leaves_updated_at_alone(user: Client, anonymous: Client) -> None:
    tag = api_publish(user, user.username)
    before = anonymous.get(f"/api/v1/box/{tag}").json()

    requests.get(provider_url(anonymous, tag), timeout=30)
    after = anonymous.get(f"/api/v1/box/{tag}").json()

    assert after["downloads"] == before["downloads"] + 1
    assert after["updated_at"] == before["updated_at"]
    provider_before = before["current_version"]["providers"][0]
    provider_after = after["current_version"]["providers"][0]
    assert provider_after["updated_at"] == provider_before["updated_at"]


def test_revoked_version_is_skipped_in_metadata(user: Client, anonymous: Client) -> None:
    tag = api_publish(user, user.username, versions=("1.0.0", "1.1.0", "1.2.0"))

    user.put(f"/api/v1/box/{tag}/version/1.2.0/revoke")
    metadata = anonymous.get(f"/{tag}").json()
    box = anonymous.get(f"/api/v1/box/{tag}").json()

    assert [v["version"] for v in metadata["versions"]] == ["1.1.0", "1.0.0"]
    assert box["current_version"]["version"] == "1.1.0"
