"""box.import: a box fetched from a URL into binstore, resuming a broken download."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from tests.boxes import build_box, sha256
from tests.conftest import Client, inspected_provider, wait_for
from tests.integration.test_api_boxes import (
    assert_error,
    create_box,
    create_provider,
    create_version,
)
from tests.loopback import Request, serve

ETAG = '"box-v1"'


def ranged_file(content: bytes, cut_first_at: int | None = None) -> Any:
    """Serve ``content`` with Range support; the first answer stops after ``cut_first_at`` bytes."""

    def respond(request: Request, number: int) -> tuple[int, dict[str, str], bytes | None]:
        start = 0
        range_header = request.headers.get("Range")
        if range_header and request.headers.get("If-Range") == ETAG:
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
        body = content[start:]
        headers = {"ETag": ETAG, "Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        if number == 0 and cut_first_at is not None:
            return status, headers, body[:cut_first_at]
        return status, headers, body

    return respond


def import_box(client: Client, box: str, url: str, **fields: Any) -> requests.Response:
    return client.post(
        f"/api/v1/box/{client.username}/{box}/version/1.0.0/provider/libvirt/import",
        json={"url": url, **fields},
    )


def prepared_box(client: Client) -> str:
    box = create_box(client)
    create_version(client, box)
    create_provider(client, box)
    return box


def wait_for_job(client: Client, job_id: int) -> dict[str, Any] | None:
    def finished() -> dict[str, Any] | None:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(finished, timeout=30)


def test_import_resumes_broken_download_and_verifies(user: Client, anonymous: Client) -> None:
    content = build_box("libvirt", disk_bytes=512 * 1024)
    box = prepared_box(user)

    with serve(ranged_file(content, cut_first_at=200_000)) as source:
        submitted = import_box(
            user, box, source.url + "/base.box", checksum_type="sha256", checksum=sha256(content)
        )
        job = wait_for_job(user, submitted.json()["id"])
    inspection = inspected_provider(user, box)
    user.put(f"/api/v1/box/{user.username}/{box}/version/1.0.0/release")
    url = anonymous.get(f"/{user.username}/{box}").json()["versions"][0]["providers"][0]["url"]

    assert submitted.status_code == 202, submitted.text
    assert job is not None and job["state"] == "succeeded", job
    assert job["result"]["sha256"] == sha256(content)
    assert len(source.requests) == 2
    resumed_at = int(source.requests[1].headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 200_000
    assert inspection is not None and inspection["result"]["verdict"] == "verified"
    assert requests.get(url, timeout=30).content == content


def test_import_with_wrong_checksum_fails_permanently(user: Client) -> None:
    content = build_box("libvirt")
    box = prepared_box(user)

    with serve(ranged_file(content)) as source:
        submitted = import_box(
            user, box, source.url, checksum_type="md5", checksum=hashlib.md5(b"x").hexdigest()
        )
        job = wait_for_job(user, submitted.json()["id"])

    assert job is not None
    assert job["state"] == "failed"
    assert job["attempt"] == 1
    assert "checksum mismatch" in job["last_error"]


def test_import_from_missing_file_fails_permanently(user: Client) -> None:
    box = prepared_box(user)

    with serve(lambda request, number: (404, {}, b"gone")) as source:
        job = wait_for_job(user, import_box(user, box, source.url).json()["id"])

    assert job is not None
    assert job["state"] == "failed"
    assert job["last_error"].startswith("the source responded with HTTP 404")


def test_import_refuses_address_outside_allowlist(user: Client) -> None:
    # The suite allowlists 127.0.0.0/8 only, so IPv6 loopback stays refused.
    box = prepared_box(user)

    job = wait_for_job(user, import_box(user, box, "http://[::1]:9/base.box").json()["id"])

    assert job is not None
    assert job["state"] == "failed"
    assert "address ::1 is private, loopback, link-local or reserved" in job["last_error"]


def test_import_request_is_validated(user: Client, make_user: Any) -> None:
    box = prepared_box(user)
    other = make_user()

    assert_error(import_box(user, box, "file:///etc/passwd"), 422, "http or https")
    assert_error(import_box(user, box, "https://u:p@x.org/b.box"), 422, "user name or password")
    assert_error(
        import_box(user, box, "https://x.org/b.box", checksum_type="sha256", checksum="12"),
        422,
        "not a sha256 digest",
    )
    assert_error(
        other.post(
            f"/api/v1/box/{user.username}/{box}/version/1.0.0/provider/libvirt/import",
            json={"url": "https://x.org/b.box"},
        ),
        403,
        "may not change",
    )
