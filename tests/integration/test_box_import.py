"""box.import: boxes fetched from sources on loopback addresses into binstore."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.boxes import build_box, sha256
from tests.conftest import Client, unique
from tests.loopback import BoxSource, RedirectLoop
from tests.operations import wait_for
from tests.publishing import wait_until_inspected
from tests.responses import assert_error

# Large enough that a source breaking off halfway leaves many parts behind.
CONTENT = build_box("libvirt", disk_bytes=1024 * 1024)


@pytest.fixture
def source() -> Iterator[BoxSource]:
    server = BoxSource(CONTENT)
    yield server
    server.stop()


def pending_provider(client: Client) -> str:
    """Create a box with version 1.0.0 and a libvirt provider without a file; return its tag."""
    name = unique("box")
    tag = f"{client.username}/{name}"
    base = f"/api/v1/box/{tag}"
    steps = [
        client.post("/api/v1/boxes", json={"username": client.username, "name": name}),
        client.post(f"{base}/versions", json={"version": {"version": "1.0.0"}}),
        client.post(f"{base}/version/1.0.0/providers", json={"provider": {"name": "libvirt"}}),
    ]
    for step in steps:
        assert step.status_code == 200, step.text
    return tag


def start_import(client: Client, tag: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt/import", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def wait_for_job(client: Client, job_id: int) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["state"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(finished, timeout=60)
    assert job, f"job {job_id} did not finish: {client.get(f'/api/v1/jobs/{job_id}').json()}"
    return dict(job)


def path(job: dict[str, Any]) -> list[str]:
    return [step["to"] for step in job["history"]]


def download(client: Client, tag: str) -> bytes:
    metadata = client.get(f"/{tag}", headers={"Accept": "application/json"}).json()
    [version] = metadata["versions"]
    [provider] = version["providers"]
    response = client.session.get(provider["url"], timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def release(client: Client, tag: str) -> None:
    released = client.put(f"/api/v1/box/{tag}/version/1.0.0/release")
    assert released.status_code == 200, released.text


def test_imported_box_is_verified_and_served(user: Client, source: BoxSource) -> None:
    tag = pending_provider(user)

    submitted = start_import(
        user,
        tag,
        {"url": source.file_url, "checksum_type": "sha256", "checksum": sha256(CONTENT)},
    )
    job = wait_for_job(user, submitted["id"])
    [inspection] = wait_until_inspected(user, tag)
    release(user, tag)

    assert submitted["kind"] == "box.import"
    assert submitted["box"] == tag
    assert job["state"] == "succeeded", job
    assert job["result"] == {
        "sha256": sha256(CONTENT),
        "size": len(CONTENT),
        "success": True,
        "resumed_from": 0,
    }
    assert inspection["result"] == {"verdict": "verified", "reason": None}
    assert download(user, tag) == CONTENT
    provider = user.get(f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt").json()
    assert (provider["checksum_type"], provider["checksum"]) == ("sha256", sha256(CONTENT))


def import_and_release(client: Client, source: BoxSource) -> tuple[str, dict[str, Any]]:
    """Import ``source`` into a new provider, stop the source, and release it once inspected.

    Returns the box's tag and the finished import job.
    """
    tag = pending_provider(client)
    try:
        submitted = start_import(client, tag, {"url": source.file_url})
        job = wait_for_job(client, submitted["id"])
    finally:
        source.stop()
    wait_until_inspected(client, tag)
    release(client, tag)
    return tag, job


def test_import_resumes_where_the_source_broke_off(user: Client) -> None:
    half = len(CONTENT) // 2
    source = BoxSource(CONTENT, break_after=half)
    tag, job = import_and_release(user, source)

    assert job["state"] == "succeeded", job
    assert path(job) == [
        "queued", "running", "retrying",
        "queued", "running", "succeeded",
    ]  # fmt: skip
    assert "the source broke off" in job["history"][2]["error"]
    resumed_from = job["result"]["resumed_from"]
    assert 0 < resumed_from <= half
    assert source.ranges == [None, f"bytes={resumed_from}-"]
    assert download(user, tag) == CONTENT


def test_import_without_length_blames_broken_source(user: Client) -> None:
    source = BoxSource(CONTENT, break_after=len(CONTENT) // 2, with_length=False)
    tag, job = import_and_release(user, source)

    assert job["state"] == "succeeded", job
    assert path(job) == [
        "queued", "running", "retrying",
        "queued", "running", "succeeded",
    ]  # fmt: skip
    assert "the source broke off after" in job["history"][2]["error"]
    assert job["result"]["resumed_from"] == 0
    assert source.ranges == [None, None]
    assert download(user, tag) == CONTENT


def test_import_redirect_loop_fails_permanently(user: Client) -> None:
    loop = RedirectLoop()
    tag = pending_provider(user)
    try:
        submitted = start_import(user, tag, {"url": loop.url + "/base.box"})
        job = wait_for_job(user, submitted["id"])
    finally:
        loop.stop()

    assert job["state"] == "failed", job
    assert path(job) == ["queued", "running", "failed"]
    assert "TooManyRedirects" in job["last_error"]


def test_import_starts_over_when_the_source_changes(user: Client) -> None:
    replacement = build_box("libvirt", disk_bytes=512 * 1024)
    source = BoxSource(CONTENT, break_after=len(CONTENT) // 2, replacement=replacement)
    tag = pending_provider(user)
    try:
        submitted = start_import(user, tag, {"url": source.file_url})
        job = wait_for_job(user, submitted["id"])
    finally:
        source.stop()
    wait_until_inspected(user, tag)
    release(user, tag)

    assert job["state"] == "succeeded", job
    assert job["attempt"] == 3
    changed = job["history"][5]["error"]
    assert changed.startswith(
        f"SourceChanged: the source's file changed from {len(CONTENT)} to {len(replacement)} bytes"
    )
    assert source.ranges[2] is None
    assert job["result"]["resumed_from"] == 0
    assert download(user, tag) == replacement


def test_import_with_wrong_checksum_fails(user: Client, source: BoxSource) -> None:
    tag = pending_provider(user)
    wrong = "0" * 64

    submitted = start_import(
        user, tag, {"url": source.file_url, "checksum_type": "sha256", "checksum": wrong}
    )
    job = wait_for_job(user, submitted["id"])

    assert job["state"] == "failed"
    assert path(job) == ["queued", "running", "failed"]
    assert job["last_error"].startswith("binstore rejected the file: ")
    assert "checksum" in job["last_error"]
    provider = user.get(f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt").json()
    assert provider["checksum"] is None
    assert provider["download_url"] is None


def test_import_from_disallowed_address_fails_permanently(user: Client) -> None:
    source = BoxSource(CONTENT, host="127.0.0.2")
    tag = pending_provider(user)
    try:
        submitted = start_import(user, tag, {"url": source.file_url})
        job = wait_for_job(user, submitted["id"])
    finally:
        source.stop()

    assert job["state"] == "failed"
    assert path(job) == ["queued", "running", "failed"]
    assert job["last_error"] == (
        f"the source {source.url} is not allowed: address 127.0.0.2 is private, "
        "loopback, link-local, multicast, unspecified or a cloud metadata "
        "address; an operator may allow it with ATLAS_OUTBOUND_ALLOWLIST"
    )
    assert source.ranges == []


def test_import_of_missing_file_fails_permanently(user: Client, source: BoxSource) -> None:
    tag = pending_provider(user)

    submitted = start_import(user, tag, {"url": source.url + "/missing.box"})
    job = wait_for_job(user, submitted["id"])

    assert job["state"] == "failed"
    assert path(job) == ["queued", "running", "failed"]
    assert job["last_error"] == f"the source {source.url} responded with HTTP 404"


def test_v2_import_is_listed_among_the_box_jobs(user: Client, source: BoxSource) -> None:
    tag = pending_provider(user)

    response = user.post(
        f"/api/v2/box/{tag}/version/1.0.0/provider/libvirt/unknown/import",
        json={"url": source.file_url},
    )
    assert response.status_code == 202, response.text
    submitted = response.json()
    wait_for_job(user, submitted["id"])
    listed = user.get("/api/v1/jobs", params={"box": tag, "kind": "box.import"})

    assert [job["id"] for job in listed.json()["jobs"]] == [submitted["id"]]


def test_import_needs_an_http_url(user: Client) -> None:
    tag = pending_provider(user)

    response = user.post(
        f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt/import",
        json={"url": "file:///etc/passwd"},
    )

    assert_error(response, 422, "url must be an http or https URL")


def test_outsider_cannot_import(user: Client, make_user: Any, source: BoxSource) -> None:
    tag = pending_provider(user)
    outsider = make_user()

    response = outsider.post(
        f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt/import", json={"url": source.file_url}
    )

    assert_error(response, 403, f"may not change boxes of {user.username!r}")
    assert source.ranges == []


def test_second_import_waits_for_the_first(user: Client) -> None:
    source = BoxSource(CONTENT, hold_at=len(CONTENT) // 2)
    tag = pending_provider(user)
    try:
        first = start_import(user, tag, {"url": source.file_url})
        assert wait_for(source.holding.is_set, timeout=30)
        second = user.post(
            f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt/import",
            json={"url": source.file_url},
        )
        source.resume.set()
        job = wait_for_job(user, first["id"])
        third = start_import(user, tag, {"url": source.file_url})
        wait_for_job(user, third["id"])
    finally:
        source.resume.set()
        source.stop()

    assert_error(
        second,
        409,
        f"job {first['id']} is already importing a file into this provider; "
        "wait for it to finish or cancel it",
    )
    assert job["state"] == "succeeded", job


def test_release_fails_running_import(user: Client) -> None:
    source = BoxSource(CONTENT, break_after=len(CONTENT) // 2)
    tag = pending_provider(user)
    served = user.post(
        f"/api/v1/box/{tag}/version/1.0.0/providers",
        json={"provider": {"name": "virtualbox", "url": "https://boxes.example/base.box"}},
    )
    assert served.status_code == 200, served.text
    try:
        submitted = start_import(user, tag, {"url": source.file_url})
        # The first attempt breaks off halfway, and the retry comes after the release.
        release(user, tag)
        job = wait_for_job(user, submitted["id"])
    finally:
        source.stop()

    assert job["state"] == "failed", job
    assert "was released after this upload URL was issued" in job["history"][-1]["error"]
    provider = user.get(f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt").json()
    assert provider["download_url"] is None


def test_cancelled_import_stores_nothing(user: Client) -> None:
    source = BoxSource(CONTENT, hold_at=len(CONTENT) // 2)
    tag = pending_provider(user)
    provider = f"/api/v1/box/{tag}/version/1.0.0/provider/libvirt"

    def stored_checksum() -> str | None:
        return user.get(provider).json()["checksum"]

    try:
        submitted = start_import(user, tag, {"url": source.file_url})
        assert source.holding.wait(30), "the import never reached the source"
        cancelled = user.post(f"/api/v1/jobs/{submitted['id']}/cancel")
        source.resume.set()
        assert source.sent.wait(30), "the import stopped reading the source"
        # Were it allowed, the worker would store the file moments after the source's last byte.
        stored = wait_for(stored_checksum, timeout=5)
    finally:
        source.resume.set()
        source.stop()

    assert cancelled.status_code == 200, cancelled.text
    assert stored is None
    assert user.get(f"/api/v1/jobs/{submitted['id']}").json()["state"] == "cancelled"


def test_job_shows_import_url_without_credentials(user: Client, source: BoxSource) -> None:
    tag = pending_provider(user)
    origin, path = source.file_url.split("://", 1)[1].split("/", 1)
    url = f"http://mirror:s3cret@{origin}/{path}?token=s3cret"

    submitted = start_import(user, tag, {"url": url})
    job = wait_for_job(user, submitted["id"])

    assert submitted["payload"]["url"] == f"http://{origin}/[redacted]"
    assert job["state"] == "succeeded", job
    assert job["payload"]["url"] == f"http://{origin}/[redacted]"
