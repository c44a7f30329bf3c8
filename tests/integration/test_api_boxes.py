"""The Vagrant Cloud API through the gateway, on the real services."""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import create_engine, text

from tests.boxes import build_box, sha256
from tests.conftest import Client, unique
from tests.publishing import wait_until_inspected

BOX_FIELDS = {
    "tag",
    "name",
    "username",
    "short_description",
    "description_markdown",
    "description_html",
    "private",
    "downloads",
    "created_at",
    "updated_at",
    "current_version",
    "versions",
}
VERSION_FIELDS = {
    "version",
    "number",
    "status",
    "description_html",
    "description_markdown",
    "release_url",
    "revoke_url",
    "providers",
    "created_at",
    "updated_at",
}
PROVIDER_FIELDS = {
    "name",
    "architecture",
    "default_architecture",
    "hosted",
    "hosted_token",
    "original_url",
    "download_url",
    "checksum",
    "checksum_type",
    "created_at",
    "updated_at",
}


def assert_error(response: requests.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert any(fragment in message for message in body["errors"]), body


def create_box(client: Client, name: str | None = None, **fields: Any) -> str:
    name = name or unique("box")
    response = client.post(
        "/api/v1/boxes", json={"username": client.username, "name": name, **fields}
    )
    assert response.status_code == 200, response.text
    return name


def create_version(client: Client, box: str, version: str = "1.0.0") -> None:
    response = client.post(
        f"/api/v1/box/{client.username}/{box}/versions", json={"version": {"version": version}}
    )
    assert response.status_code == 200, response.text


def create_provider(client: Client, box: str, version: str = "1.0.0", **fields: Any) -> dict:
    response = client.post(
        f"/api/v1/box/{client.username}/{box}/version/{version}/providers",
        json={"provider": {"name": "libvirt", **fields}},
    )
    assert response.status_code == 200, response.text
    return response.json()


def upload(client: Client, box: str, content: bytes, version: str = "1.0.0") -> requests.Response:
    target = client.get(
        f"/api/v1/box/{client.username}/{box}/version/{version}/provider/libvirt/upload"
    ).json()
    return requests.put(target["upload_path"], data=content, timeout=30)


def published_box(client: Client, content: bytes, version: str = "1.0.0") -> str:
    box = create_box(client)
    create_version(client, box, version)
    create_provider(client, box, version)
    assert upload(client, box, content, version).status_code == 200
    release = client.put(f"/api/v1/box/{client.username}/{box}/version/{version}/release")
    assert release.status_code == 200, release.text
    wait_until_inspected(client, f"{client.username}/{box}")
    return box


def test_box_create_returns_vagrant_cloud_fields(user: Client) -> None:
    response = user.post(
        "/api/v1/boxes",
        json={"username": user.username, "name": "base", "short_description": "A *base* box"},
    )

    assert response.status_code == 200
    box = response.json()
    assert set(box) == BOX_FIELDS
    assert box["tag"] == f"{user.username}/base"
    assert box["created_at"]
    assert box["versions"] == []


def test_box_create_accepts_nested_body(user: Client) -> None:
    response = user.post(
        "/api/v1/boxes", json={"box": {"username": user.username, "name": "nested"}}
    )

    assert response.status_code == 200
    assert response.json()["name"] == "nested"


def test_unknown_box_is_404_in_error_format(user: Client) -> None:
    response = user.get(f"/api/v1/box/{user.username}/missing")

    assert_error(response, 404, f"box {user.username}/missing not found")


def test_unknown_route_is_404_in_error_format(anonymous: Client) -> None:
    assert_error(anonymous.get("/api/v1/no/such/route/here/at/all"), 404, "no route matches")


def test_bad_token_is_401(suite: Any) -> None:
    client = Client(suite.api_url, "nobody", "not-a-token")

    response = client.post("/api/v1/boxes", json={"username": "nobody", "name": "x"})

    assert_error(response, 401, "token is invalid")


def test_token_accepted_in_header_and_query(user: Client, anonymous: Client) -> None:
    by_header = anonymous.get("/api/v1/authenticate", headers={"X-Atlas-Token": user.token})
    by_query = anonymous.get("/api/v1/authenticate", params={"access_token": user.token})

    assert by_header.json()["user"]["username"] == user.username
    assert by_query.json()["user"]["username"] == user.username


def test_write_without_token_is_401(anonymous: Client, user: Client) -> None:
    box = create_box(user)

    assert_error(anonymous.delete(f"/api/v1/box/{user.username}/{box}"), 401, "authentication")


def test_other_user_cannot_change_box(user: Client, make_user: Any) -> None:
    box = create_box(user)
    other = make_user()

    response = other.put(f"/api/v1/box/{user.username}/{box}", json={"short_description": "x"})

    assert_error(response, 403, "may not change")


def test_malformed_json_is_400(user: Client) -> None:
    response = user.post(
        "/api/v1/boxes", data=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert_error(response, 400, "not valid JSON")


def test_box_name_with_separator_is_422(user: Client) -> None:
    response = user.post("/api/v1/boxes", json={"username": user.username, "name": "a/b"})

    assert_error(response, 422, "name")


def test_duplicate_box_is_422(user: Client) -> None:
    box = create_box(user)

    response = user.post("/api/v1/boxes", json={"username": user.username, "name": box})

    assert_error(response, 422, "already exists")


def test_box_update_and_delete(user: Client) -> None:
    box = create_box(user)

    updated = user.put(f"/api/v1/box/{user.username}/{box}", json={"description": "# Title"})
    deleted = user.delete(f"/api/v1/box/{user.username}/{box}")
    after = user.get(f"/api/v1/box/{user.username}/{box}")

    assert updated.json()["description_html"] == "<h1>Title</h1>\n"
    assert deleted.status_code == 200
    assert after.status_code == 404


def test_descriptions_are_rendered_when_written(user: Client, database_url: str) -> None:
    box = create_box(user, description="*box*")
    create_version(user, box)
    user.put(
        f"/api/v1/box/{user.username}/{box}/version/1.0.0",
        json={"version": {"description": "*version*"}},
    )

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                text(
                    "SELECT b.description_html, v.description_html FROM boxes b"
                    " JOIN versions v ON v.box_id = b.id WHERE b.name = :name"
                ),
                {"name": box},
            ).one()
    finally:
        engine.dispose()

    assert stored == ("<p><em>box</em></p>\n", "<p><em>version</em></p>\n")


def test_description_html_escapes_raw_html(user: Client) -> None:
    box = create_box(user, description="<script>alert(1)</script>")

    html = user.get(f"/api/v1/box/{user.username}/{box}").json()["description_html"]

    assert "<script>" not in html


def test_duplicate_version_is_422(user: Client) -> None:
    box = create_box(user)
    create_version(user, box)

    response = user.post(
        f"/api/v1/box/{user.username}/{box}/versions", json={"version": {"version": "1.0.0"}}
    )

    assert_error(response, 422, "version 1.0.0")


def test_invalid_version_string_is_422(user: Client) -> None:
    box = create_box(user)

    response = user.post(
        f"/api/v1/box/{user.username}/{box}/versions", json={"version": {"version": "one"}}
    )

    assert_error(response, 422, "not a valid version")


def test_release_without_provider_is_422(user: Client) -> None:
    box = create_box(user)
    create_version(user, box)

    response = user.put(f"/api/v1/box/{user.username}/{box}/version/1.0.0/release")

    assert_error(response, 422, "no provider")


def test_version_fields_match_vagrant_cloud(user: Client) -> None:
    box = create_box(user)
    create_version(user, box)
    provider = create_provider(user, box)

    version = user.get(f"/api/v1/box/{user.username}/{box}/version/1.0.0").json()

    assert set(version) == VERSION_FIELDS
    assert version["status"] == "unreleased"
    assert set(provider) == PROVIDER_FIELDS
    assert provider["hosted"] is True
    assert provider["download_url"] is None


def test_unknown_checksum_type_is_422(user: Client) -> None:
    box = create_box(user)
    create_version(user, box)

    response = user.post(
        f"/api/v1/box/{user.username}/{box}/version/1.0.0/providers",
        json={"provider": {"name": "libvirt", "checksum_type": "crc32", "checksum": "abcd"}},
    )

    assert_error(response, 422, "checksum_type 'crc32' is not supported")


def test_upload_stores_file_and_marks_provider_uploaded(user: Client) -> None:
    content = build_box()
    box = create_box(user)
    create_version(user, box)
    create_provider(user, box)

    response = upload(user, box, content)
    wait_until_inspected(user, f"{user.username}/{box}")
    provider = user.get(f"/api/v1/box/{user.username}/{box}/version/1.0.0/provider/libvirt").json()

    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == sha256(content)
    assert provider["checksum_type"] == "sha256"
    assert provider["checksum"] == sha256(content)
    assert provider["download_url"].endswith("/libvirt/unknown/vagrant.box")


def test_upload_with_wrong_checksum_leaves_provider_not_uploaded(user: Client, suite: Any) -> None:
    content = build_box()
    box = create_box(user)
    create_version(user, box)
    create_provider(user, box, checksum_type="sha256", checksum="0" * 64)

    response = upload(user, box, content)
    provider = user.get(f"/api/v1/box/{user.username}/{box}/version/1.0.0/provider/libvirt").json()
    release = user.put(f"/api/v1/box/{user.username}/{box}/version/1.0.0/release")

    assert_error(response, 422, "checksum mismatch")
    assert sha256(content) in response.json()["errors"][0]
    assert provider["download_url"] is None
    assert_error(release, 422, "no provider")


def test_upload_with_declared_md5_checksum_is_verified(user: Client) -> None:
    import hashlib

    content = build_box()
    box = create_box(user)
    create_version(user, box)
    create_provider(user, box, checksum_type="md5", checksum=hashlib.md5(content).hexdigest())

    response = upload(user, box, content)

    assert response.status_code == 200, response.text


def test_upload_target_cannot_be_reused(user: Client) -> None:
    content = build_box()
    box = create_box(user)
    create_version(user, box)
    create_provider(user, box)
    target = user.get(
        f"/api/v1/box/{user.username}/{box}/version/1.0.0/provider/libvirt/upload"
    ).json()["upload_path"]

    first = requests.put(target, data=content, timeout=30)
    second = requests.put(target, data=content, timeout=30)

    assert first.status_code == 200
    assert_error(second, 404, "already used")


def test_direct_upload_callback_confirms_upload(user: Client) -> None:
    content = build_box()
    box = create_box(user)
    create_version(user, box)
    create_provider(user, box)
    target = user.get(
        f"/api/v1/box/{user.username}/{box}/version/1.0.0/provider/libvirt/upload/direct"
    ).json()

    early = user.put(target["callback"].replace(user.api_url, ""))
    stored = requests.put(target["upload_path"], data=content, timeout=30)
    confirmed = user.put(target["callback"].replace(user.api_url, ""))

    assert_error(early, 422, "not received")
    assert stored.status_code == 200
    assert confirmed.status_code == 200
    assert confirmed.json()["checksum"] == sha256(content)


def test_metadata_lists_only_released_versions(user: Client, anonymous: Client) -> None:
    content = build_box()
    box = published_box(user, content)
    create_version(user, box, "2.0.0")

    response = anonymous.get(f"/{user.username}/{box}", headers={"Accept": "application/json"})
    head = anonymous.request("HEAD", f"/{user.username}/{box}")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    metadata = response.json()
    assert metadata["name"] == f"{user.username}/{box}"
    assert [v["version"] for v in metadata["versions"]] == ["1.0.0"]
    assert metadata["versions"][0]["providers"][0]["checksum"] == sha256(content)
    assert head.status_code == 200
    assert head.headers["Content-Type"] == "application/json"


def test_download_redirects_to_signed_binstore_url(user: Client, anonymous: Client) -> None:
    content = build_box()
    box = published_box(user, content)
    url = anonymous.get(f"/{user.username}/{box}").json()["versions"][0]["providers"][0]["url"]

    redirect = requests.get(url, allow_redirects=False, timeout=30)
    download = requests.get(url, timeout=30)
    counted = user.get(f"/api/v1/box/{user.username}/{box}").json()

    assert redirect.status_code == 302
    assert "token=" in redirect.headers["Location"]
    assert download.content == content
    assert counted["downloads"] == 2


def test_download_serves_ranges(user: Client, anonymous: Client) -> None:
    content = build_box()
    box = published_box(user, content)
    url = anonymous.get(f"/{user.username}/{box}").json()["versions"][0]["providers"][0]["url"]
    blob_url = requests.get(url, allow_redirects=False, timeout=30).headers["Location"]

    first = requests.get(blob_url, headers={"Range": "bytes=0-0"}, timeout=30)
    last = requests.get(blob_url, headers={"Range": f"bytes={len(content) - 1}-"}, timeout=30)
    beyond = requests.get(blob_url, headers={"Range": f"bytes={len(content)}-"}, timeout=30)

    assert first.status_code == 206
    assert first.content == content[:1]
    assert last.status_code == 206
    assert last.content == content[-1:]
    assert beyond.status_code == 416


def test_blob_url_with_forged_token_is_403(user: Client, anonymous: Client) -> None:
    content = build_box()
    box = published_box(user, content)
    url = anonymous.get(f"/{user.username}/{box}").json()["versions"][0]["providers"][0]["url"]
    blob_url = requests.get(url, allow_redirects=False, timeout=30).headers["Location"]
    forged = blob_url.rsplit(".", 1)[0] + ".AAAA"

    assert_error(requests.get(forged, timeout=30), 403, "invalid or expired")


def test_revoked_version_leaves_metadata(user: Client, anonymous: Client) -> None:
    box = published_box(user, build_box())

    revoke = user.put(f"/api/v1/box/{user.username}/{box}/version/1.0.0/revoke")
    rerelease = user.put(f"/api/v1/box/{user.username}/{box}/version/1.0.0/release")
    metadata = anonymous.get(f"/{user.username}/{box}").json()

    assert revoke.json()["status"] == "revoked"
    assert_error(rerelease, 422, "revoked")
    assert metadata["versions"] == []


def test_private_box_is_404_for_outsiders(user: Client, anonymous: Client, make_user: Any) -> None:
    box = create_box(user, is_private=True)
    other = make_user()

    assert user.get(f"/api/v1/box/{user.username}/{box}").status_code == 200
    assert_error(anonymous.get(f"/api/v1/box/{user.username}/{box}"), 404, "not found")
    assert_error(other.get(f"/{user.username}/{box}"), 404, "not found")


def test_box_privacy_accepts_the_response_name(user: Client, anonymous: Client) -> None:
    created = create_box(user, private=True)
    updated = create_box(user)
    changed = user.put(f"/api/v1/box/{user.username}/{updated}", json={"box": {"private": True}})

    assert user.get(f"/api/v1/box/{user.username}/{created}").json()["private"] is True
    assert changed.json()["private"] is True
    assert_error(anonymous.get(f"/api/v1/box/{user.username}/{created}"), 404, "not found")
    assert_error(anonymous.get(f"/api/v1/box/{user.username}/{updated}"), 404, "not found")


def test_password_with_outer_spaces_signs_in(make_user: Any, anonymous: Client) -> None:
    user = make_user(password="  spaced out password  ")

    padded = anonymous.post(
        "/api/v1/authenticate",
        json={"user": {"login": user.username, "password": "  spaced out password  "}},
    )
    trimmed = anonymous.post(
        "/api/v1/authenticate",
        json={"user": {"login": user.username, "password": "spaced out password"}},
    )

    assert padded.status_code == 200, padded.text
    assert trimmed.status_code == 401, trimmed.text


def test_login_with_password_creates_token(make_user: Any, anonymous: Client) -> None:
    user = make_user(password="correct horse battery")

    good = anonymous.post(
        "/api/v1/authenticate",
        json={
            "user": {"login": user.username, "password": "correct horse battery"},
            "token": {"description": "laptop"},
        },
    )
    bad = anonymous.post(
        "/api/v1/authenticate",
        json={"user": {"login": user.username, "password": "wrong password"}},
    )

    assert good.status_code == 200, good.text
    assert good.json()["description"] == "laptop"
    assert (
        anonymous.get(
            "/api/v1/authenticate", params={"access_token": good.json()["token"]}
        ).status_code
        == 200
    )
    assert_error(bad, 401, "invalid username or password")


def test_logout_revokes_token(user: Client) -> None:
    assert user.delete("/api/v1/authenticate").status_code == 204

    assert_error(user.get("/api/v1/authenticate"), 401, "invalid")


def test_account_lists_public_boxes_to_anonymous(user: Client, anonymous: Client) -> None:
    public = create_box(user)
    create_box(user, is_private=True)

    account = anonymous.get(f"/api/v1/user/{user.username}").json()

    assert [box["name"] for box in account["boxes"]] == [public]


def eventually(read: Any, check: Any, timeout: float = 10.0) -> Any:
    """Return the first result of ``read()`` that passes ``check``, or the last one."""
    import time

    deadline = time.monotonic() + timeout
    result = read()
    while not check(result) and time.monotonic() < deadline:
        time.sleep(0.05)
        result = read()
    return result


def test_cached_metadata_follows_release_and_revoke(user: Client, anonymous: Client) -> None:
    box = published_box(user, build_box())
    path = f"/{user.username}/{box}"
    first = anonymous.get(path).json()
    create_version(user, box, "2.0.0")
    create_provider(user, box, "2.0.0")
    upload(user, box, build_box(), "2.0.0")
    user.put(f"/api/v1/box/{user.username}/{box}/version/2.0.0/release")

    released = eventually(lambda: anonymous.get(path).json(), lambda m: len(m["versions"]) == 2)
    user.put(f"/api/v1/box/{user.username}/{box}/version/2.0.0/revoke")
    revoked = eventually(lambda: anonymous.get(path).json(), lambda m: len(m["versions"]) == 1)

    assert [v["version"] for v in first["versions"]] == ["1.0.0"]
    assert [v["version"] for v in released["versions"]] == ["2.0.0", "1.0.0"]
    assert [v["version"] for v in revoked["versions"]] == ["1.0.0"]


def test_cached_metadata_forgets_box_made_private(user: Client, anonymous: Client) -> None:
    box = published_box(user, build_box())
    path = f"/{user.username}/{box}"
    assert anonymous.get(path).status_code == 200

    user.put(f"/api/v1/box/{user.username}/{box}", json={"is_private": True})
    hidden = eventually(lambda: anonymous.get(path), lambda r: r.status_code == 404)

    assert_error(hidden, 404, "not found")
