"""Local blob storage: atomic, content-addressed, nothing left behind on failure."""

import hashlib
import os
import time
from pathlib import Path

import pytest

from services.binstore.storage import LocalStorage, UploadBusy


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_commit_moves_upload_under_its_sha256(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with storage.new_upload() as writer:
        writer.write(b"abc")
        writer.write(b"def")
        writer.commit(sha256(b"abcdef"))

    assert storage.blob_path(sha256(b"abcdef")).read_bytes() == b"abcdef"
    assert list(storage.temp_dir.iterdir()) == []


def test_released_upload_leaves_no_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(ConnectionResetError), storage.new_upload() as writer:
        writer.write(b"abc")
        raise ConnectionResetError("client went away")

    assert list(storage.temp_dir.iterdir()) == []
    assert list(storage.iter_blobs()) == []


def test_commit_of_existing_digest_refreshes_modification_time(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    digest = sha256(b"abc")
    with storage.new_upload() as writer:
        writer.write(b"abc")
        writer.commit(digest)
    age(storage.blob_path(digest), 3600)

    with storage.new_upload() as writer:
        writer.write(b"abc")
        writer.commit(digest)

    assert storage.blob_path(digest).stat().st_mtime > time.time() - 60


def test_partial_upload_keeps_bytes_between_opens(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with storage.open_partial("7") as writer:
        writer.write(b"abc")
    with storage.open_partial("7") as writer:
        size_on_reopen = writer.size
        stored = b"".join(writer.read_back())
        writer.write(b"def")
        writer.commit(sha256(b"abcdef"))

    assert size_on_reopen == 3
    assert stored == b"abc"
    assert storage.blob_path(sha256(b"abcdef")).read_bytes() == b"abcdef"
    assert list(storage.iter_partials()) == []


def test_partial_upload_open_twice_is_busy(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with storage.open_partial("7"), pytest.raises(UploadBusy):
        storage.open_partial("7")

    assert not storage.delete_partial("missing")
    assert storage.delete_partial("7")


def test_partial_upload_in_use_is_not_deleted(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with storage.open_partial("7") as writer:
        writer.write(b"abc")
        deleted_while_open = storage.delete_partial("7")

    assert not deleted_while_open
    assert [entry.name for entry in storage.iter_partials()] == ["7"]


def test_discarded_partial_upload_leaves_no_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with storage.open_partial("7") as writer:
        writer.write(b"abc")
        writer.discard()

    assert list(storage.iter_partials()) == []


def test_delete_blob_spares_recently_stored_blob(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    old, fresh = sha256(b"old"), sha256(b"fresh")
    for content in (b"old", b"fresh"):
        with storage.new_upload() as writer:
            writer.write(content)
            writer.commit(sha256(content))
    age(storage.blob_path(old), 7200)
    cutoff = time.time() - 3600

    assert storage.delete_blob(old, cutoff)
    assert not storage.delete_blob(fresh, cutoff)
    assert not storage.delete_blob(old, cutoff)
    assert not storage.has_blob(old)
    assert storage.has_blob(fresh)
    assert list(storage.temp_dir.iterdir()) == []


def test_delete_temporary_spares_file_in_use(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    stale = storage.temp_dir / "upload-stale"
    stale.write_bytes(b"x")
    age(stale, 7200)
    live = storage.new_upload()
    live.write(b"y")
    cutoff = time.time() - 3600

    names = sorted(entry.name for entry in storage.iter_temporary())
    deleted_stale = storage.delete_temporary("upload-stale", cutoff)
    deleted_live = storage.delete_temporary(live.path.name, cutoff)
    live.release()

    assert names == sorted(["upload-stale", live.path.name])
    assert deleted_stale
    assert not deleted_live


def test_blob_body_serves_requested_span(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    digest = sha256(b"0123456789")
    with storage.new_upload() as writer:
        writer.write(b"0123456789")
        writer.commit(digest)

    blob = storage.open_blob(digest)
    body = blob.body(2, 5)
    content = b"".join(body)
    body.close()  # type: ignore[attr-defined]

    assert blob.size == 10
    assert content == b"23456"


def test_malformed_digest_is_rejected(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(ValueError, match="not a lowercase hex sha256"):
        storage.blob_path("../../etc/passwd")
    with pytest.raises(ValueError, match="not a valid partial upload key"):
        storage.partial_path("../x")
