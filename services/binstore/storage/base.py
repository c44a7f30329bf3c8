"""What binstore needs from a place that keeps blobs: the storage-backend interface.

Blobs are addressed by the sha256 of their content and never change. An
upload is written through a ``BlobWriter`` and becomes a blob only when it
is committed, so readers never see part of a file. A partial upload keeps
its bytes between requests so that a client can resume it.

The local-disk backend implements this in ``local``. An object store (S3)
fits the same shape. A writer is a multipart upload, and ``commit``
completes it and copies it to the blob's key. A partial upload is a
multipart upload whose id is kept under the partial's key. The listings are
prefix listings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class StoredObject:
    """An entry of a storage listing: a blob, a partial upload or a temporary file."""

    #: sha256 of a blob, key of a partial upload or name of a temporary file.
    name: str
    size: int  # bytes
    modified_at: float  # seconds since the epoch


class StorageError(Exception):
    """Base of the errors a storage backend raises on purpose."""


class BlobNotFound(StorageError, LookupError):
    """No blob has the requested sha256."""


class UploadBusy(StorageError):
    """Another request is writing the same partial upload; retry when it ends."""


class BlobWriter(ABC):
    """One request's access to an upload being written.

    Methods block on I/O, so callers run them on a thread. A writer is used
    by one request at a time. Leaving its ``with`` block calls ``release()``.
    """

    #: Bytes stored, including those that earlier requests wrote to a partial upload.
    size: int

    @abstractmethod
    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` to the upload."""

    @abstractmethod
    def read_back(self) -> Iterator[bytes]:
        """Yield the bytes stored so far, from the first, to rebuild digests on resume."""

    @abstractmethod
    def sync(self) -> None:
        """Make the bytes written so far durable."""

    @abstractmethod
    def commit(self, sha256: str) -> None:
        """Store the content durably as blob ``sha256`` and end the upload.

        An existing blob of the same digest is replaced, and the blob's
        modification time becomes the time of the commit: garbage
        collection relies on that to spare a blob that is being uploaded again.
        """

    @abstractmethod
    def discard(self) -> None:
        """Remove the upload and everything written to it."""

    @abstractmethod
    def release(self) -> None:
        """End this request's access: a temporary upload is discarded, a partial one kept."""

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class StoredBlob(ABC):
    """An open blob, ready to be sent in a response."""

    size: int  # bytes

    @abstractmethod
    def body(self, offset: int, length: int) -> Iterable[bytes]:
        """Return a response body of ``length`` bytes from ``offset``; it owns the open blob."""

    @abstractmethod
    def close(self) -> None:
        """Close the blob when no body was made from it."""


class BlobStorage(ABC):
    """A place that keeps blobs, uploads in progress and partial uploads."""

    @abstractmethod
    def probe(self) -> None:
        """Return when the backend can store a file now; raise ``OSError`` if not."""

    @abstractmethod
    def new_upload(self) -> BlobWriter:
        """Start a temporary upload, removed on ``release()`` unless it was committed."""

    @abstractmethod
    def open_partial(self, key: str) -> BlobWriter:
        """Open the partial upload ``key``, created empty if missing.

        Raises ``UploadBusy`` while another request has it open.
        """

    @abstractmethod
    def open_blob(self, sha256: str) -> StoredBlob:
        """Open blob ``sha256`` for reading; raise ``BlobNotFound`` if it is missing."""

    @abstractmethod
    def has_blob(self, sha256: str) -> bool:
        """Return whether blob ``sha256`` exists."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[StoredObject]:
        """List every blob."""

    @abstractmethod
    def iter_partials(self) -> Iterator[StoredObject]:
        """List every partial upload."""

    @abstractmethod
    def iter_temporary(self) -> Iterator[StoredObject]:
        """List the temporary files of uploads in progress or left by a crash."""

    @abstractmethod
    def delete_blob(self, sha256: str, unmodified_since: float) -> bool:
        """Delete blob ``sha256`` unless it was modified at or after ``unmodified_since``.

        Returns whether it was deleted. An upload that commits the same
        digest while this runs keeps its blob.
        """

    @abstractmethod
    def delete_partial(self, key: str) -> bool:
        """Delete the partial upload ``key`` unless a request has it open; return whether it did."""

    @abstractmethod
    def delete_temporary(self, name: str, unmodified_since: float) -> bool:
        """Delete a temporary file unless it was modified at or after ``unmodified_since``."""
