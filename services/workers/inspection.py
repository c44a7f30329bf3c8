"""Reading a stored ``.box`` once: its checksum and its ``metadata.json``.

A box is a tar archive, optionally compressed (gzip, bzip2 or xz), whose
``metadata.json`` names the provider it is built for and, since Vagrant
2.4, its architecture. The file is read as a stream, so a box of any size
needs only a chunk of memory at a time.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Vagrant Cloud's checksum types; each names a hashlib algorithm.
CHECKSUM_TYPES = ("md5", "sha1", "sha256", "sha384", "sha512")
# metadata.json is a few hundred bytes; a larger one is not a box's.
MAX_METADATA_SIZE = 64 * 1024
# The first bytes of the compressed formats a box may come in.
GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


@dataclass(frozen=True)
class Expectation:
    """The provider, architecture and checksums that the provider record expects of the file."""

    provider: str
    architecture: str
    sha256: str
    checksum_type: str | None = None
    checksum: str | None = None


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str | None = None

    def as_result(self) -> dict[str, Any]:
        return {"verdict": "verified" if self.verified else "rejected", "reason": self.reason}


class DigestingReader:
    """A file object over byte chunks that hashes every byte read from it."""

    def __init__(self, chunks: Iterable[bytes], digests: list[Any]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""
        self._digests = digests
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        for digest in self._digests:
            digest.update(data)
        self.size += len(data)
        return data

    def peek(self, size: int) -> bytes:
        """Return up to ``size`` bytes ahead, which later reads return and hash."""
        while len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        return self._buffer[:size]

    def drain(self, chunk_size: int = 1024 * 1024) -> None:
        while self.read(chunk_size):
            pass


def inspect(chunks: Iterable[bytes], expected: Expectation) -> Verdict:
    """Read the whole box from ``chunks`` and judge it against ``expected``."""
    sha256 = hashlib.sha256()
    digests = [sha256]
    declared = None
    if expected.checksum_type and expected.checksum_type != "sha256":
        if expected.checksum_type not in CHECKSUM_TYPES:
            return Verdict(False, f"checksum type {expected.checksum_type!r} is not supported")
        declared = hashlib.new(expected.checksum_type)
        digests.append(declared)
    reader = DigestingReader(chunks, digests)

    metadata, problem = _read_metadata(reader)
    reader.drain()

    if sha256.hexdigest() != expected.sha256:
        return Verdict(False, "the stored file does not match its sha256; upload it again")
    declared_value = (expected.checksum or "").lower()
    if expected.checksum_type == "sha256" and sha256.hexdigest() != declared_value:
        return Verdict(False, "the file's sha256 does not match the declared checksum")
    if declared is not None and declared.hexdigest() != declared_value:
        return Verdict(
            False, f"the file's {expected.checksum_type} does not match the declared checksum"
        )
    if problem is not None:
        return Verdict(False, problem)
    assert metadata is not None
    return _judge_metadata(metadata, expected)


def _read_metadata(reader: DigestingReader) -> tuple[dict[str, Any] | None, str | None]:
    """Return ``(metadata, None)`` or ``(None, why it could not be read)``.

    The whole archive is read, past metadata.json to its end, so that a
    truncated or corrupt box is rejected here rather than by ``vagrant box add``.
    """
    metadata: dict[str, Any] | None = None
    try:
        with tarfile.open(fileobj=_decompressed(reader), mode="r|") as archive:
            for member in archive:
                if metadata is not None or member.name.removeprefix("./") != "metadata.json":
                    continue
                if not member.isfile() or member.size > MAX_METADATA_SIZE:
                    return None, "metadata.json in the box is not a small regular file"
                stream = archive.extractfile(member)
                assert stream is not None
                raw = stream.read()
                try:
                    metadata = json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    return None, f"metadata.json in the box is not valid JSON: {exc}"
                if not isinstance(metadata, dict):
                    return None, "metadata.json in the box must contain a JSON object"
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError) as exc:
        return None, f"the file is not a tar archive that Vagrant can read: {exc}"
    if metadata is None:
        return None, "the box has no metadata.json"
    return metadata, None


def _decompressed(reader: DigestingReader) -> Any:
    """Return a file object of the archive's uncompressed bytes.

    The standard library's decompressing files raise EOFError when the
    compressed data ends before its end-of-stream marker, which tarfile's
    own stream reading lets pass.
    """
    head = reader.peek(6)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=reader, mode="rb")
    if head.startswith(BZIP2_MAGIC):
        return bz2.BZ2File(reader)
    if head.startswith(XZ_MAGIC):
        return lzma.LZMAFile(reader)
    return reader


def _judge_metadata(metadata: dict[str, Any], expected: Expectation) -> Verdict:
    provider = metadata.get("provider")
    if provider != expected.provider:
        return Verdict(
            False,
            f"metadata.json names provider {provider!r}, but the box was uploaded "
            f"for {expected.provider!r}",
        )
    architecture = metadata.get("architecture")
    if architecture is not None and architecture != expected.architecture:
        return Verdict(
            False,
            f"metadata.json names architecture {architecture!r}, but the box was uploaded "
            f"for {expected.architecture!r}",
        )
    return Verdict(True)
