"""Receiving box files: whole uploads in one request, resumable uploads in parts.

A ``PUT`` without ``Content-Range`` carries the whole file. If it fails for
any reason (interrupted, wrong checksum, too large) nothing of it is kept.

A ``PUT`` with ``Content-Range: bytes FIRST-LAST/TOTAL`` carries one part of
a resumable upload. Its bytes are kept between requests, even when the
request breaks off, and the next part must start where the stored bytes
end. A request with ``Content-Range: bytes */TOTAL`` and an empty body
requests the number of bytes stored. While parts are missing, the response
is ``202`` with ``Range: bytes=0-LAST``. The part that completes the file, or a query that finds it
complete, stores the blob. A wrong checksum discards every part.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from werkzeug.datastructures import ContentRange
from werkzeug.http import parse_content_range_header
from werkzeug.wrappers import Request, Response

from services.toolkit.errors import (
    AtlasError,
    Conflict,
    InvalidInput,
    PayloadTooLarge,
    Unprocessable,
)
from services.toolkit.threads import run_in_thread
from services.toolkit.web import json_response

from .digests import ChecksumMismatch, DigestCache, Digests
from .receiving import IncompleteUpload, copy_into, read_chunks
from .storage import BlobStorage, BlobWriter, UploadBusy

log = logging.getLogger(__name__)


def parse_content_range(header: str) -> ContentRange:
    """Parse an upload's ``Content-Range``; raise ``InvalidInput`` unless it names a total."""
    parsed = parse_content_range_header(header)
    if parsed is None or parsed.units != "bytes":
        raise InvalidInput(
            f"Content-Range {header!r} is invalid; use bytes FIRST-LAST/TOTAL or bytes */TOTAL"
        )
    if parsed.length is None:
        raise InvalidInput(
            f"Content-Range {header!r} gives no total size; use bytes FIRST-LAST/TOTAL"
        )
    if parsed.stop is not None and parsed.stop > parsed.length:
        raise InvalidInput(f"Content-Range {header!r} ends past the total size")
    return parsed


class UploadReceiver:
    """Receives one request's upload for the target behind ``token``."""

    def __init__(
        self, storage: BlobStorage, data: Any, digest_cache: DigestCache, max_size: int
    ) -> None:
        self.storage = storage
        self.data = data
        self.digest_cache = digest_cache
        self.max_size = max_size

    def receive(self, request: Request, token: str) -> Any:
        header = request.headers.get("Content-Range")
        if header is None:
            return self.receive_whole(request, token)
        return self.receive_part(request, token, parse_content_range(header))

    def receive_whole(self, request: Request, token: str) -> dict[str, Any]:
        length = request.content_length
        if length is not None and length > self.max_size:
            raise self._too_large(length)
        return self.receive_chunks(token, read_chunks(request.stream, self.max_size), length)

    def receive_chunks(
        self, token: str, chunks: Iterable[bytes], length: int | None
    ) -> dict[str, Any]:
        """Store a whole file given as ``chunks``, expected to be ``length`` bytes if known."""
        expected = self.data.begin_upload(token)
        digests = Digests(expected["checksum_type"])

        with self.storage.new_upload() as writer:
            try:
                received = copy_into(chunks, writer, digests)
                if length is not None and received != length:
                    raise IncompleteUpload(
                        f"upload incomplete: received {received} of {length} bytes"
                    )
                sha256 = digests.verify(expected["checksum"])
            except (ChecksumMismatch, IncompleteUpload, PayloadTooLarge) as exc:
                self._reject(token, expected, exc)
                raise self._as_domain_error(exc) from exc
            run_in_thread(writer.commit, sha256)
        return self._finish(token, expected, sha256, received)

    def receive_part(self, request: Request, token: str, content_range: ContentRange) -> Any:
        total = int(content_range.length)  # type: ignore[arg-type]
        if total > self.max_size:
            raise self._too_large(total)
        start = content_range.start
        part_length = 0 if start is None else int(content_range.stop) - start  # type: ignore[arg-type]
        if start is not None and request.content_length != part_length:
            raise InvalidInput(
                f"Content-Length must be {part_length}, the length of the part "
                "that Content-Range names"
            )
        if start is None and (request.content_length or request.headers.get("Transfer-Encoding")):
            raise InvalidInput("a status request with Content-Range: bytes */TOTAL takes no body")

        expected = self.data.begin_upload(token, total)
        key = str(expected["target_id"])
        try:
            writer = self.storage.open_partial(key)
        except UploadBusy as exc:
            raise Conflict(
                "another request is uploading to this URL; retry when it has ended"
            ) from exc

        with writer:
            if start is None:
                if writer.size == total:
                    return self._complete_partial(token, expected, writer, key)
                return self._progress(writer.size, total)
            if start != writer.size:
                raise Conflict(
                    f"this upload continues at byte {writer.size}, not {start}; "
                    f"send Content-Range: bytes {writer.size}-LAST/{total}"
                )
            self._append(request, writer, key, expected, part_length)
            if writer.size < total:
                return self._progress(writer.size, total)
            return self._complete_partial(token, expected, writer, key)

    def _append(
        self,
        request: Request,
        writer: BlobWriter,
        key: str,
        expected: dict[str, Any],
        part_length: int,
    ) -> None:
        digests = self._resume_digests(writer, key, expected)
        try:
            received = copy_into(read_chunks(request.stream, part_length), writer, digests)
        except IncompleteUpload as exc:
            raise InvalidInput(f"{exc}; {writer.size} bytes are stored, resume from there") from exc
        finally:
            # The bytes received so far stay for the next part, whatever went wrong.
            run_in_thread(writer.sync)
            self.digest_cache.put(key, digests)
        if received != part_length:
            raise InvalidInput(
                f"part incomplete: received {received} of {part_length} bytes; "
                f"{writer.size} bytes are stored, resume from there"
            )

    def _resume_digests(self, writer: BlobWriter, key: str, expected: dict[str, Any]) -> Digests:
        digests = self.digest_cache.take(key, writer.size)
        if digests is None:
            digests = Digests(expected["checksum_type"])
            if writer.size:
                run_in_thread(digests.update_all, writer.read_back())
        return digests

    def _complete_partial(
        self, token: str, expected: dict[str, Any], writer: BlobWriter, key: str
    ) -> dict[str, Any]:
        digests = self._resume_digests(writer, key, expected)
        try:
            sha256 = digests.verify(expected["checksum"])
        except ChecksumMismatch as exc:
            writer.discard()
            self._reject(token, expected, exc)
            raise self._as_domain_error(exc) from exc
        run_in_thread(writer.commit, sha256)
        return self._finish(token, expected, sha256, digests.size)

    def _finish(
        self, token: str, expected: dict[str, Any], sha256: str, size: int
    ) -> dict[str, Any]:
        result = self.data.finish_upload(token, sha256, size)
        # A whole upload may have replaced a resumable one that was under way.
        self.storage.delete_partial(str(expected["target_id"]))
        log.info("stored %s (%d bytes) for provider %s", sha256, size, result["provider_id"])
        return {"sha256": sha256, "size": size, "success": True}

    def _progress(self, stored: int, total: int) -> Response:
        headers = {"Range": f"bytes=0-{stored - 1}"} if stored else {}
        body = {"received": stored, "size": total, "complete": False, "success": True}
        return json_response(body, 202, headers)

    def _reject(self, token: str, expected: dict[str, Any], exc: Exception) -> None:
        log.warning("upload for provider %s rejected: %s", expected["provider_id"], exc)
        try:
            self.data.reject_upload(token, str(exc))
        except AtlasError as rpc_error:
            log.warning(
                "recording the rejection for provider %s failed: %s",
                expected["provider_id"],
                rpc_error,
            )

    def _too_large(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"upload of {size} bytes exceeds the maximum size of {self.max_size} bytes; "
            "ask the operator to raise max_upload_size"
        )

    @staticmethod
    def _as_domain_error(exc: Exception) -> AtlasError:
        if isinstance(exc, AtlasError):
            return exc
        if isinstance(exc, ChecksumMismatch):
            return Unprocessable(str(exc))
        return InvalidInput(str(exc))
