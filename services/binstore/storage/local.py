"""Blob storage on a local file system.

Layout under the root directory:

- ``sha256/ab/cd/<digest>``: blobs, each a file named by its sha256;
- ``tmp/upload-*``: uploads in progress, renamed into ``sha256/`` when complete;
- ``partial/<key>``: partial uploads kept between requests for resuming.

A blob appears only through ``os.replace`` of a file that was written and
fsynced completely, so a reader never sees part of a blob, and a crash
leaves at most a temporary file, which garbage collection removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from services.toolkit.httpserver import FileBody

from .base import (
    BlobNotFound,
    BlobStorage,
    BlobWriter,
    StoredBlob,
    StoredObject,
    UploadBusy,
)

READ_SIZE = 1024 * 1024  # bytes read per step by read_back

# Bytes an upload writes between two requests to the kernel to write back.
WRITEBACK_STEP = 32 * 1024 * 1024
TEMPORARY_PREFIX = "upload-"
DELETING_PREFIX = "deleting-"


def _fsync_directory(path: Path) -> None:
    # A rename is durable only once the directory holding the new name is synced.
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_all(descriptor: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


class LocalWriter(BlobWriter):
    """An upload written to one file, either temporary or partial."""

    def __init__(self, storage: LocalStorage, path: Path, descriptor: int, temporary: bool) -> None:
        self.storage = storage
        self.path = path
        self.descriptor = descriptor
        self.temporary = temporary
        self.size = os.fstat(descriptor).st_size
        self.closed = False
        # Bytes before this offset were handed to writeback one step ago or earlier.
        self.writeback_start = self.size
        self.writeback_end = self.size

    def write(self, chunk: bytes) -> None:
        _write_all(self.descriptor, chunk)
        self.size += len(chunk)
        if self.size - self.writeback_end >= WRITEBACK_STEP:
            self._start_writeback()

    def _start_writeback(self) -> None:
        # On Linux (mm/fadvise.c), POSIX_FADV_DONTNEED starts writing dirty
        # pages back without waiting and drops pages already written, here
        # those of the previous step. The disk works while the upload goes on, so the fsync in
        # commit() finds little left to write, and a large upload does not
        # evict the page cache that downloads are served from.
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(
                self.descriptor,
                self.writeback_start,
                self.size - self.writeback_start,
                os.POSIX_FADV_DONTNEED,
            )
        self.writeback_start = self.writeback_end
        self.writeback_end = self.size

    def read_back(self) -> Iterator[bytes]:
        position = 0
        while position < self.size:
            chunk = os.pread(self.descriptor, min(READ_SIZE, self.size - position), position)
            if not chunk:
                raise OSError(f"{self.path} ended at byte {position} of {self.size}")
            position += len(chunk)
            yield chunk

    def sync(self) -> None:
        os.fdatasync(self.descriptor)

    def commit(self, sha256: str) -> None:
        os.fsync(self.descriptor)
        os.utime(self.descriptor)
        target = self.storage.blob_path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)
        _fsync_directory(target.parent)
        self._close()

    def discard(self) -> None:
        if self.closed:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._close()

    def release(self) -> None:
        if self.temporary:
            self.discard()
        else:
            self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            # Closing drops the partial upload's lock as well.
            os.close(self.descriptor)


class LocalBlob(StoredBlob):
    def __init__(self, path: Path) -> None:
        try:
            self.file = open(path, "rb")  # noqa: SIM115 - the response body closes it
        except FileNotFoundError as exc:
            raise BlobNotFound(f"blob {path.name} not found") from exc
        self.size = os.fstat(self.file.fileno()).st_size

    def body(self, offset: int, length: int) -> FileBody:
        return FileBody(self.file, offset=offset, length=length)

    def close(self) -> None:
        self.file.close()


class LocalStorage(BlobStorage):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.temp_dir = self.root / "tmp"
        self.blob_dir = self.root / "sha256"
        self.partial_dir = self.root / "partial"
        for directory in (self.temp_dir, self.blob_dir, self.partial_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def probe(self) -> None:
        try:
            handle, name = tempfile.mkstemp(dir=self.temp_dir, prefix="probe-")
        except OSError as exc:
            raise OSError(f"cannot write under storage root {self.root}: {exc.strerror}") from exc
        os.close(handle)
        os.unlink(name)

    def blob_path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"{sha256!r} is not a lowercase hex sha256 digest")
        return self.blob_dir / sha256[:2] / sha256[2:4] / sha256

    def partial_path(self, key: str) -> Path:
        if not key or not key.replace("-", "").isalnum():
            raise ValueError(f"{key!r} is not a valid partial upload key")
        return self.partial_dir / key

    def new_upload(self) -> LocalWriter:
        descriptor, name = tempfile.mkstemp(dir=self.temp_dir, prefix=TEMPORARY_PREFIX)
        return LocalWriter(self, Path(name), descriptor, temporary=True)

    def open_partial(self, key: str) -> LocalWriter:
        path = self.partial_path(key)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(descriptor)
            raise UploadBusy(f"partial upload {key} is open in another request") from exc
        return LocalWriter(self, path, descriptor, temporary=False)

    def open_blob(self, sha256: str) -> LocalBlob:
        return LocalBlob(self.blob_path(sha256))

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def iter_blobs(self) -> Iterator[StoredObject]:
        for path in self.blob_dir.glob("??/??/*"):
            entry = _stat_entry(path)
            if entry is not None:
                yield entry

    def iter_partials(self) -> Iterator[StoredObject]:
        for path in self.partial_dir.iterdir():
            entry = _stat_entry(path)
            if entry is not None:
                yield entry

    def iter_temporary(self) -> Iterator[StoredObject]:
        for path in self.temp_dir.iterdir():
            entry = _stat_entry(path)
            if entry is not None:
                yield entry

    def delete_blob(self, sha256: str, unmodified_since: float) -> bool:
        path = self.blob_path(sha256)
        entry = _stat_entry(path)
        if entry is None or entry.modified_at >= unmodified_since:
            return False
        # Moving the blob aside first and checking its time again closes the
        # race with an upload that commits the same digest between the stat
        # and the unlink: that upload's file is put back instead of deleted.
        aside = self.temp_dir / f"{DELETING_PREFIX}{sha256}-{secrets.token_hex(4)}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if aside.stat().st_mtime >= unmodified_since:
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
            os.unlink(aside)
            return False
        os.unlink(aside)
        return True

    def delete_partial(self, key: str) -> bool:
        path = self.partial_path(key)
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        else:
            path.unlink(missing_ok=True)
            return True
        finally:
            os.close(descriptor)

    def delete_temporary(self, name: str, unmodified_since: float) -> bool:
        path = self.temp_dir / Path(name).name
        entry = _stat_entry(path)
        if entry is None or entry.modified_at >= unmodified_since:
            return False
        path.unlink(missing_ok=True)
        return True


def _stat_entry(path: Path) -> StoredObject | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return StoredObject(path.name, status.st_size, status.st_mtime)
