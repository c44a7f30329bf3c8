"""Local-disk blob storage, addressed by the sha256 of each file's content.

A file is written to a temporary name under ``root/tmp`` and renamed into
``root/sha256/ab/cd/<digest>`` only when complete, so a reader never sees a
partial blob and an interrupted upload leaves nothing under ``sha256/``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

CHUNK_SIZE = 1024 * 1024  # bytes read from the request per step


class ChecksumMismatch(ValueError):
    """The received file's digest differs from the declared checksum."""


class IncompleteUpload(ValueError):
    """The request body ended before the announced ``Content-Length``."""


class LocalStorage:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.temp_dir = self.root / "tmp"
        self.blob_dir = self.root / "sha256"
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.blob_dir.mkdir(parents=True, exist_ok=True)

    def probe(self) -> None:
        """Return when a file can be created under the storage root; raise OSError if not."""
        try:
            handle, name = tempfile.mkstemp(dir=self.temp_dir, prefix="probe-")
        except OSError as exc:
            raise OSError(f"cannot write under storage root {self.root}: {exc.strerror}") from exc
        os.close(handle)
        os.unlink(name)

    def path(self, sha256: str) -> Path:
        return self.blob_dir / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def store(
        self,
        chunks: Iterable[bytes],
        checksum_type: str | None = None,
        checksum: str | None = None,
        expected_size: int | None = None,
    ) -> tuple[str, int]:
        """Write ``chunks`` to a blob, checking ``checksum`` on the way; return (sha256, size).

        Raises ``ChecksumMismatch`` or ``IncompleteUpload`` and removes the
        temporary file when the content is wrong; any other error removes it too.
        """
        sha256 = hashlib.sha256()
        declared = (
            hashlib.new(checksum_type) if checksum_type and checksum_type != "sha256" else None
        )
        size = 0
        handle, temp_name = tempfile.mkstemp(dir=self.temp_dir, prefix="upload-")
        try:
            with os.fdopen(handle, "wb") as temp:
                size = self._copy(chunks, temp, sha256, declared)
                temp.flush()
                os.fsync(temp.fileno())
            if expected_size is not None and size != expected_size:
                raise IncompleteUpload(
                    f"upload incomplete: received {size} of {expected_size} bytes"
                )
            digest = sha256.hexdigest()
            if checksum_type and checksum:
                received = declared.hexdigest() if declared else digest
                if received != checksum.lower():
                    raise ChecksumMismatch(
                        f"checksum mismatch: declared {checksum_type} {checksum.lower()}, "
                        f"received file has {received}"
                    )
            target = self.path(digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp_name, target)
            return digest, size
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)

    @staticmethod
    def _copy(chunks: Iterable[bytes], temp: IO[bytes], *digests: object) -> int:
        hashers = [d for d in digests if d is not None]
        size = 0
        for chunk in chunks:
            if not chunk:
                continue
            temp.write(chunk)
            for hasher in hashers:
                hasher.update(chunk)  # type: ignore[attr-defined]
            size += len(chunk)
        return size
