"""Copying a request body into storage: size limit, digests and errors."""

import hashlib
import io
from pathlib import Path

import pytest

from services.binstore.digests import Digests
from services.binstore.receiving import CHUNK_SIZE, IncompleteUpload, copy_into, read_chunks
from services.binstore.storage import LocalStorage
from services.toolkit.errors import PayloadTooLarge
from services.toolkit.httpserver import MalformedChunk


class BrokenStream(io.RawIOBase):
    """A request body whose client disconnects after ``good`` bytes."""

    def __init__(self, good: bytes) -> None:
        self.good = good

    def read(self, size: int = -1) -> bytes:
        if self.good:
            chunk, self.good = self.good[:size], self.good[size:]
            return chunk
        raise ConnectionResetError("connection reset by peer")


def test_copy_writes_and_digests_every_chunk(tmp_path: Path) -> None:
    content = bytes(range(256)) * (3 * CHUNK_SIZE // 256 + 7)
    storage = LocalStorage(tmp_path)
    digests = Digests("md5")

    with storage.new_upload() as writer:
        copied = copy_into(read_chunks(io.BytesIO(content), len(content)), writer, digests)
        path = writer.path
        written = path.read_bytes()

    assert copied == len(content)
    assert written == content
    assert digests.sha256.hexdigest() == hashlib.sha256(content).hexdigest()
    assert digests.verify(hashlib.md5(content).hexdigest())


def test_body_over_limit_stops_reading() -> None:
    stream = io.BytesIO(b"x" * (3 * CHUNK_SIZE))

    with pytest.raises(PayloadTooLarge, match="maximum size of 100 bytes"):
        list(read_chunks(stream, 100))

    assert stream.tell() == CHUNK_SIZE


def test_disconnect_mid_body_is_incomplete_upload(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    digests = Digests(None)

    with (
        pytest.raises(IncompleteUpload, match="interrupted after 10 bytes"),
        storage.new_upload() as writer,
    ):
        copy_into(read_chunks(BrokenStream(b"0123456789"), 1000), writer, digests)

    assert digests.size == 10
    assert list(storage.temp_dir.iterdir()) == []


class CutChunkedStream(io.BytesIO):
    """A chunked body whose connection was cut, as the server's reader reports it."""

    def read(self, size: int | None = -1) -> bytes:
        raise MalformedChunk("invalid literal for int() with base 16: b''")


def test_cut_chunked_body_names_the_cause() -> None:
    with pytest.raises(IncompleteUpload) as raised:
        list(read_chunks(CutChunkedStream(), 1000))

    assert "ended without its last chunk or has a malformed chunk size" in str(raised.value)
    assert "base 16" not in str(raised.value)
