"""Digests of an upload: the sha256 that names the blob and the checksum its provider declared."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable


class ChecksumMismatch(ValueError):
    """The received file's digest differs from the declared checksum."""


class Digests:
    """Every digest an upload needs, updated together so the file is read once.

    ``checksum_type`` is the provider's declared checksum type, one of
    hashlib's ``md5``, ``sha1``, ``sha256``, ``sha384`` and ``sha512``.
    """

    def __init__(self, checksum_type: str | None = None) -> None:
        self.checksum_type = checksum_type
        self.sha256 = hashlib.sha256()
        self.declared = (
            hashlib.new(checksum_type) if checksum_type and checksum_type != "sha256" else None
        )
        self.size = 0  # bytes digested

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        if self.declared is not None:
            self.declared.update(chunk)
        self.size += len(chunk)

    def update_all(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.update(chunk)

    def verify(self, checksum: str | None) -> str:
        """Return the sha256 of the content; raise ``ChecksumMismatch`` if ``checksum`` differs."""
        sha256 = self.sha256.hexdigest()
        if self.checksum_type and checksum:
            received = self.declared.hexdigest() if self.declared is not None else sha256
            if received != checksum.lower():
                raise ChecksumMismatch(
                    f"checksum mismatch: declared {self.checksum_type} {checksum.lower()}, "
                    f"received file has {received}"
                )
        return sha256


class DigestCache:
    """Digests of partial uploads between their requests, so resuming needs no re-read.

    An entry is valid only for the partial upload's size when it was stored.
    A miss (another binstore instance took the previous request, a restart,
    an eviction) costs one read of the bytes stored so far.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Digests] = OrderedDict()

    def take(self, key: str, size: int) -> Digests | None:
        """Remove and return the digests of ``key`` if they cover exactly ``size`` bytes."""
        digests = self._entries.pop(key, None)
        if digests is None or digests.size != size:
            return None
        return digests

    def put(self, key: str, digests: Digests) -> None:
        self._entries[key] = digests
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
