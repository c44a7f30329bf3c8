"""Uploads to binstore, whole and resumable, and what each outcome leaves in storage."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from services.toolkit import config as cfg
from tests.conftest import Client, free_port, service_config
from tests.integration.binstore_helpers import (
    Database,
    StoredState,
    chunk,
    new_slot,
    on_server,
    open_request,
    read_response,
    wait_until,
)
from tests.integration.test_api_boxes import assert_error, create_provider

# max_upload_size of the second binstore instance these tests start.
SMALL_LIMIT = 1024 * 1024  # bytes


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@pytest.fixture(scope="module")
def small_binstore(suite: Any, base_config: dict[str, Any]) -> Iterator[str]:
    """A second binstore instance on the same storage, accepting at most ``SMALL_LIMIT`` bytes."""
    from nameko.containers import ServiceContainer

    from services.binstore.service import BinstoreService

    port = free_port()
    config = service_config(base_config)
    config[cfg.ATLAS][cfg.MAX_UPLOAD_SIZE] = SMALL_LIMIT
    config[cfg.WEB_SERVER_ADDRESS] = f"127.0.0.1:{port}"
    container = ServiceContainer(BinstoreService, config)
    container.start()
    yield f"http://127.0.0.1:{port}"
    container.stop()


@pytest.fixture
def stored(storage_root: Path) -> StoredState:
    return StoredState(storage_root)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.engine.dispose()


def put_part(url: str, content: bytes, first: int, last: int, total: int) -> requests.Response:
    return requests.put(
        url,
        data=content[first : last + 1],
        headers={"Content-Range": f"bytes {first}-{last}/{total}"},
        timeout=30,
    )


def query_progress(url: str, total: int) -> requests.Response:
    return requests.put(url, headers={"Content-Range": f"bytes */{total}"}, timeout=30)


def test_upload_stores_blob_and_no_temporary_file(user: Client, stored: StoredState) -> None:
    content = os.urandom(3 * 1024 * 1024 + 5)
    slot = new_slot(user)

    response = requests.put(slot.upload_url, data=content, timeout=30)

    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == sha256(content)
    assert stored.blob_path(sha256(content)).read_bytes() == content
    assert stored.temporary_files() == []
    assert slot.is_uploaded()


def test_identical_uploads_share_one_blob(user: Client, stored: StoredState) -> None:
    content = os.urandom(4096)
    first, second = new_slot(user), new_slot(user)

    responses = [
        requests.put(slot.upload_url, data=content, timeout=30) for slot in (first, second)
    ]

    assert [response.status_code for response in responses] == [200, 200]
    assert stored.has_blob(sha256(content))
    assert len(list(stored.root.glob(f"sha256/*/*/{sha256(content)}"))) == 1
    assert first.provider()["checksum"] == second.provider()["checksum"] == sha256(content)


def test_chunked_upload_is_stored(user: Client, stored: StoredState) -> None:
    content = os.urandom(2 * 1024 * 1024 + 3)
    slot = new_slot(user)

    def body() -> Iterator[bytes]:
        for start in range(0, len(content), 100_000):
            yield content[start : start + 100_000]

    response = requests.put(slot.upload_url, data=body(), timeout=30)

    assert response.status_code == 200, response.text
    assert response.json() == {"sha256": sha256(content), "size": len(content), "success": True}
    assert stored.blob_path(sha256(content)).read_bytes() == content
    assert stored.temporary_files() == []


def test_wrong_checksum_leaves_no_blob(user: Client, stored: StoredState) -> None:
    content = os.urandom(100_000)
    slot = new_slot(user, checksum_type="sha1", checksum="0" * 40)

    response = requests.put(slot.upload_url, data=content, timeout=30)

    assert_error(response, 422, "checksum mismatch: declared sha1")
    assert not stored.has_blob(sha256(content))
    assert stored.temporary_files() == []
    assert not slot.is_uploaded()
    assert_error(slot.confirm(), 422, "checksum mismatch")


def test_interrupted_upload_leaves_nothing(user: Client, stored: StoredState) -> None:
    content = os.urandom(2 * 1024 * 1024)
    slot = new_slot(user)
    sock = open_request(slot.upload_url, "PUT", {"Content-Length": str(len(content))})
    sock.sendall(content[: len(content) // 2])

    sock.close()

    # The server learns of the disconnect on its own time; wait for the rejection it records.
    assert wait_until(lambda: "received 1048576 of 2097152 bytes" in slot.confirm().text)
    assert stored.temporary_files() == []
    assert not stored.has_blob(sha256(content))
    assert not slot.is_uploaded()


def test_content_length_over_limit_is_413_unread(
    user: Client, stored: StoredState, small_binstore: str
) -> None:
    slot = new_slot(user)
    url = on_server(slot.upload_url, small_binstore)
    sock = open_request(url, "PUT", {"Content-Length": str(10 * 1024**3)})

    # No body is sent: a server that read the body first would never respond.
    status, headers, body = read_response(sock)
    closed = sock.recv(1) == b""
    sock.close()

    assert status == 413
    assert b"exceeds the maximum size of 1048576 bytes" in body
    assert headers["connection"] == "close"
    assert closed
    assert stored.temporary_files() == []
    assert not slot.is_uploaded()


def test_chunked_body_over_limit_stops_reading(
    user: Client, stored: StoredState, small_binstore: str
) -> None:
    content = os.urandom(SMALL_LIMIT * 5 // 2)
    slot = new_slot(user)
    url = on_server(slot.upload_url, small_binstore)
    sock = open_request(url, "PUT", {"Transfer-Encoding": "chunked"})

    # The body never ends: only a server that stops reading at the limit responds.
    for start in range(0, len(content), 64 * 1024):
        sock.sendall(chunk(content[start : start + 64 * 1024]))
    status, headers, body = read_response(sock)
    sock.close()

    assert status == 413
    assert b"exceeds the maximum size of 1048576 bytes" in body
    assert headers["connection"] == "close"
    assert stored.temporary_files() == []
    assert not stored.has_blob(sha256(content))
    assert not slot.is_uploaded()
    assert_error(slot.confirm(), 422, "exceeds the maximum size")


def test_expired_target_is_404_and_stores_nothing(
    user: Client, stored: StoredState, database: Database
) -> None:
    content = os.urandom(10_000)
    slot = new_slot(user)
    token = slot.upload_url.rsplit("/", 1)[1]
    database.execute(
        "UPDATE upload_targets SET expires_at = now() - interval '1 second' "
        "WHERE token_hash = :hash",
        hash=hashlib.sha256(token.encode()).hexdigest(),
    )

    response = requests.put(slot.upload_url, data=content, timeout=30)

    assert_error(response, 404, "not found or expired")
    assert not stored.has_blob(sha256(content))
    assert stored.temporary_files() == []
    assert not slot.is_uploaded()


def test_reused_target_keeps_first_file(user: Client, stored: StoredState) -> None:
    first, second = os.urandom(10_000), os.urandom(10_000)
    slot = new_slot(user)

    accepted = requests.put(slot.upload_url, data=first, timeout=30)
    reused = requests.put(slot.upload_url, data=second, timeout=30)

    assert accepted.status_code == 200
    assert_error(reused, 404, "already used")
    assert slot.provider()["checksum"] == sha256(first)
    assert not stored.has_blob(sha256(second))
    assert stored.temporary_files() == []


def test_resumable_upload_in_parts(user: Client, stored: StoredState) -> None:
    content = os.urandom(3 * 1024 * 1024)
    total = len(content)
    slot = new_slot(user, checksum_type="md5", checksum=hashlib.md5(content).hexdigest())
    partials_before = stored.partial_uploads()

    first = put_part(slot.upload_url, content, 0, 999_999, total)
    second = put_part(slot.upload_url, content, 1_000_000, 2_499_999, total)
    progress = query_progress(slot.upload_url, total)
    last = put_part(slot.upload_url, content, 2_500_000, total - 1, total)

    assert first.status_code == 202
    assert first.headers["Range"] == "bytes=0-999999"
    assert second.json() == {
        "received": 2_500_000,
        "size": total,
        "complete": False,
        "success": True,
    }
    assert progress.headers["Range"] == "bytes=0-2499999"
    assert last.status_code == 200, last.text
    assert last.json()["sha256"] == sha256(content)
    assert stored.blob_path(sha256(content)).read_bytes() == content
    assert stored.partial_uploads() == partials_before
    assert slot.is_uploaded()


def test_interrupted_part_resumes_where_it_stopped(user: Client, stored: StoredState) -> None:
    content = os.urandom(2 * 1024 * 1024)
    total = len(content)
    slot = new_slot(user)
    partials_before = stored.partial_uploads()
    sock = open_request(
        slot.upload_url,
        "PUT",
        {"Content-Range": f"bytes 0-{total - 1}/{total}", "Content-Length": str(total)},
    )
    sock.sendall(content[:700_000])
    sock.shutdown(socket.SHUT_WR)
    status, _, body = read_response(sock)
    sock.close()

    progress = query_progress(slot.upload_url, total)
    last = put_part(slot.upload_url, content, 700_000, total - 1, total)

    assert status == 400
    assert b"700000 bytes are stored, resume from there" in body
    assert progress.status_code == 202
    assert progress.headers["Range"] == "bytes=0-699999"
    assert last.status_code == 200, last.text
    assert stored.blob_path(sha256(content)).read_bytes() == content
    assert stored.partial_uploads() == partials_before


def test_part_at_wrong_offset_is_409(user: Client, stored: StoredState) -> None:
    content = os.urandom(300_000)
    total = len(content)
    slot = new_slot(user)
    put_part(slot.upload_url, content, 0, 99_999, total)

    skipping = put_part(slot.upload_url, content, 200_000, total - 1, total)
    repeating = put_part(slot.upload_url, content, 0, 99_999, total)
    progress = query_progress(slot.upload_url, total)

    assert_error(skipping, 409, "continues at byte 100000, not 200000")
    assert_error(repeating, 409, "continues at byte 100000, not 0")
    assert progress.headers["Range"] == "bytes=0-99999"
    assert not slot.is_uploaded()


def test_part_with_other_total_is_409(user: Client) -> None:
    content = os.urandom(300_000)
    slot = new_slot(user)
    put_part(slot.upload_url, content, 0, 99_999, 300_000)

    response = put_part(slot.upload_url, content, 100_000, 199_999, 400_000)

    assert_error(response, 409, "receiving a file of 300000 bytes, not 400000")


def test_malformed_content_range_is_400(user: Client) -> None:
    slot = new_slot(user)

    unknown_total = requests.put(
        slot.upload_url, data=b"abc", headers={"Content-Range": "bytes 0-2/*"}, timeout=30
    )
    garbage = requests.put(
        slot.upload_url, data=b"abc", headers={"Content-Range": "lines 1-2"}, timeout=30
    )
    wrong_length = requests.put(
        slot.upload_url, data=b"abcd", headers={"Content-Range": "bytes 0-2/10"}, timeout=30
    )

    assert_error(unknown_total, 400, "gives no total size")
    assert_error(garbage, 400, "is invalid")
    assert_error(wrong_length, 400, "Content-Length must be 3")


def test_concurrent_part_is_409(user: Client, stored: StoredState) -> None:
    content = os.urandom(400_000)
    total = len(content)
    slot = new_slot(user)
    partials_before = stored.partial_uploads()
    sock = open_request(
        slot.upload_url,
        "PUT",
        {"Content-Range": f"bytes 0-{total - 1}/{total}", "Content-Length": str(total)},
    )
    sock.sendall(content[:100_000])

    # The first request is still receiving, so a second one cannot append.
    assert wait_until(lambda: stored.partial_uploads() != partials_before)
    competing = put_part(slot.upload_url, content, 0, total - 1, total)
    sock.sendall(content[100_000:])
    status, _, _ = read_response(sock)
    sock.close()

    assert_error(competing, 409, "another request is uploading to this URL")
    assert status == 200
    assert slot.provider()["checksum"] == sha256(content)


def test_resumable_checksum_mismatch_discards_parts(user: Client, stored: StoredState) -> None:
    content = os.urandom(200_000)
    total = len(content)
    slot = new_slot(user, checksum_type="sha256", checksum="1" * 64)
    partials_before = stored.partial_uploads()
    put_part(slot.upload_url, content, 0, 99_999, total)

    last = put_part(slot.upload_url, content, 100_000, total - 1, total)
    partials_after_mismatch = stored.partial_uploads()
    restart = put_part(slot.upload_url, content, 0, 99, 500)

    assert_error(last, 422, "checksum mismatch")
    assert partials_after_mismatch == partials_before
    assert not stored.has_blob(sha256(content))
    assert not slot.is_uploaded()
    assert restart.status_code == 202, restart.text
    assert restart.json()["received"] == 100


def test_resume_on_another_instance_rebuilds_digests(
    user: Client, stored: StoredState, small_binstore: str
) -> None:
    content = os.urandom(600_000)
    total = len(content)
    slot = new_slot(user, checksum_type="sha512", checksum=hashlib.sha512(content).hexdigest())
    other_instance = on_server(slot.upload_url, small_binstore)

    first = put_part(slot.upload_url, content, 0, 249_999, total)
    second = put_part(other_instance, content, 250_000, 449_999, total)
    last = put_part(slot.upload_url, content, 450_000, total - 1, total)

    assert first.status_code == 202
    assert second.status_code == 202
    assert last.status_code == 200, last.text
    assert stored.blob_path(sha256(content)).read_bytes() == content
    assert slot.is_uploaded()


def release(client: Client, slot: Any) -> requests.Response:
    """Give the slot's version a provider that serves a URL, and release the version."""
    create_provider(client, slot.box, name="virtualbox", url="https://boxes.example/base.box")
    return client.put(f"/api/v1/box/{client.username}/{slot.box}/version/1.0.0/release")


def test_release_closes_earlier_upload_urls(user: Client, stored: StoredState) -> None:
    content = os.urandom(10_000)
    slot = new_slot(user)

    released = release(user, slot)
    response = requests.put(slot.upload_url, data=content, timeout=30)

    assert released.status_code == 200, released.text
    assert_error(response, 422, "was released after this upload URL was issued")
    assert not stored.has_blob(sha256(content))
    assert not slot.is_uploaded()


def test_new_url_uploads_to_released_version(user: Client) -> None:
    content = os.urandom(10_000)
    slot = new_slot(user)
    release(user, slot)

    response = requests.put(slot.new_target(), data=content, timeout=30)

    assert response.status_code == 200, response.text
    assert slot.provider()["checksum"] == sha256(content)


def test_revoke_closes_upload_urls(user: Client, stored: StoredState) -> None:
    content = os.urandom(10_000)
    slot = new_slot(user)
    release(user, slot)
    upload_url = slot.new_target()

    revoked = user.put(f"/api/v1/box/{user.username}/{slot.box}/version/1.0.0/revoke")
    response = requests.put(upload_url, data=content, timeout=30)

    assert revoked.status_code == 200, revoked.text
    assert_error(response, 422, "was revoked")
    assert not stored.has_blob(sha256(content))


def test_new_file_replaces_one_without_declared_checksum(user: Client) -> None:
    first, second = os.urandom(10_000), os.urandom(10_000)
    slot = new_slot(user)
    stored_first = requests.put(slot.upload_url, data=first, timeout=30)

    replaced = requests.put(slot.new_target(), data=second, timeout=30)

    assert stored_first.status_code == 200, stored_first.text
    assert replaced.status_code == 200, replaced.text
    provider = slot.provider()
    assert (provider["checksum_type"], provider["checksum"]) == ("sha256", sha256(second))
