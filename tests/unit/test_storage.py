"""Local blob storage: atomic, content-addressed, nothing left behind on failure."""

import hashlib
from pathlib import Path

import pytest

from services.binstore.storage import ChecksumMismatch, IncompleteUpload, LocalStorage


def test_store_writes_blob_under_its_sha256(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    digest, size = storage.store([b"abc", b"def"])

    assert digest == hashlib.sha256(b"abcdef").hexdigest()
    assert size == 6
    assert storage.path(digest).read_bytes() == b"abcdef"
    assert list(storage.temp_dir.iterdir()) == []


def test_checksum_mismatch_leaves_no_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(ChecksumMismatch, match="declared md5"):
        storage.store([b"abc"], "md5", "0" * 32)

    assert list(storage.temp_dir.iterdir()) == []
    assert not storage.exists(hashlib.sha256(b"abc").hexdigest())


def test_short_body_is_incomplete_and_leaves_no_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(IncompleteUpload, match="received 3 of 10 bytes"):
        storage.store([b"abc"], expected_size=10)

    assert list(storage.temp_dir.iterdir()) == []


def test_interrupted_stream_leaves_no_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    def broken():
        yield b"abc"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        storage.store(broken())

    assert list(storage.temp_dir.iterdir()) == []
