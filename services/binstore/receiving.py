"""Copy a request body into an upload while computing its digests, in bounded memory.

The green thread that reads the network hands each chunk to an operating
system thread that writes and hashes it, and reads the next chunk
meanwhile. At most two chunks are held at any time, whatever the file size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import IO

from services.toolkit.errors import PayloadTooLarge
from services.toolkit.httpserver import MalformedChunk
from services.toolkit.threads import Pending, start_in_thread

from .digests import Digests
from .storage import BlobWriter

CHUNK_SIZE = 1024 * 1024  # bytes read from the request per step


class IncompleteUpload(ValueError):
    """The request body ended before the announced length."""


def read_chunks(stream: IO[bytes], limit: int) -> Iterator[bytes]:
    """Yield the body in chunks; raise ``PayloadTooLarge`` as soon as it exceeds ``limit`` bytes.

    The check matters for chunked bodies, which announce no length, so
    reading stops at the first chunk past the limit. A body that cannot be
    read to its end raises ``IncompleteUpload``.
    """
    received = 0
    while True:
        try:
            chunk = stream.read(CHUNK_SIZE)
        except MalformedChunk as exc:
            # The server's reader raises this for a chunk size line that is
            # missing or not hexadecimal, which is how a cut connection looks too.
            raise IncompleteUpload(
                f"upload interrupted after {received} bytes: the chunked body ended "
                "without its last chunk or has a malformed chunk size"
            ) from exc
        except (OSError, ValueError) as exc:
            # The client went away or timed out.
            raise IncompleteUpload(f"upload interrupted after {received} bytes: {exc}") from exc
        if not chunk:
            return
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(
                f"upload exceeds the maximum size of {limit} bytes; "
                "ask the operator to raise max_upload_size"
            )
        yield chunk


def _store(writer: BlobWriter, digests: Digests, chunk: bytes) -> None:
    writer.write(chunk)
    digests.update(chunk)


def copy_into(chunks: Iterable[bytes], writer: BlobWriter, digests: Digests) -> int:
    """Write every chunk to ``writer`` and into ``digests``; return the bytes copied.

    Errors of the reader and of the writer propagate, after the chunk in
    flight has been written, so the writer is never released mid-write.
    """
    copied = 0
    pending: Pending | None = None
    try:
        for chunk in chunks:
            if pending is not None:
                pending.wait()
                pending = None
            pending = start_in_thread(_store, writer, digests, chunk)
            copied += len(chunk)
        if pending is not None:
            pending.wait()
            pending = None
    finally:
        if pending is not None:
            # The reader failed: let the last write finish before the caller
            # discards the upload under it. Its own error, if any, is secondary.
            with contextlib.suppress(Exception):
                pending.wait()
    return copied
