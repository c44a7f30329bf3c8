"""box.import: stream a box file from a URL into binstore, resuming across attempts.

The file goes straight from the source to binstore as one part of a
resumable upload (``Content-Range: bytes FIRST-LAST/TOTAL``), so the worker
keeps nothing on disk. Binstore keeps the bytes it received even when the
source breaks off. The next attempt queries binstore for the bytes stored
and requests the rest from the source with ``Range``. A source that ignores
``Range`` sends the whole file, whose first bytes are skipped. Binstore
checks the declared checksum when the file is complete and submits
box.inspect, as for any upload.

Requests to the source go through the outbound guard, which rejects
private, loopback and link-local addresses unless
``ATLAS.outbound_allowlist`` allows them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from services.toolkit.errors import PermissionDenied, Unprocessable
from services.toolkit.jobs import JobRun, PermanentJobError
from services.toolkit.numbers import whole_number
from services.toolkit.outbound import DisallowedAddress, InvalidTarget, url_origin

log = logging.getLogger(__name__)

# Bytes read from the source per step.
CHUNK_SIZE = 256 * 1024
# Seconds to connect to binstore, and to wait for its response once the
# whole part is sent. The wait is long because completing a large upload
# may read the whole file again to compute its digests.
BINSTORE_TIMEOUT = (10.0, 600.0)
# 4xx statuses of the source that are retried, because they are temporary:
# request timeout, too early and too many requests.
RETRIED_STATUSES = frozenset({408, 425, 429})
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
# Errors of a request that would fail the same way again.
FUTILE_REQUEST_ERRORS = (
    requests.TooManyRedirects,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
)


class SourceInterrupted(Exception):
    """The source stopped sending before the whole file arrived; a retry resumes."""


class SourceChanged(Exception):
    """The source's file is not the one a previous attempt began to store; a retry restarts."""


class BinstoreFailed(Exception):
    """Binstore could not be reached or did not store the part; a retry continues."""


class ImportAbandoned(Exception):
    """The attempt no longer counts (the job was cancelled); stop sending."""


class SourceBody:
    """A file object over the source's response body that binstore's PUT reads.

    The body starts at byte ``position`` of the file. Bytes before
    ``send_from`` are read and dropped, because binstore already stores them.
    A body that ends before byte ``total`` raises ``SourceInterrupted``, so
    that the PUT breaks off instead of waiting for bytes that never come.
    """

    def __init__(
        self,
        raw: urllib3.BaseHTTPResponse,
        position: int,
        send_from: int,
        total: int,
        abandoned: Callable[[], bool],
    ) -> None:
        self.raw = raw
        self.position = position
        self.send_from = send_from
        self.total = total
        self.abandoned = abandoned

    def __len__(self) -> int:
        return self.total - self.send_from

    def read(self, size: int = -1) -> bytes:
        while self.position < self.send_from:
            self._read_source(min(self.send_from - self.position, CHUNK_SIZE))
        wanted = self.total - self.position
        if size >= 0:
            wanted = min(wanted, size)
        if wanted <= 0:
            return b""
        return self._read_source(min(wanted, CHUNK_SIZE))

    def _read_source(self, size: int) -> bytes:
        if self.abandoned():
            raise ImportAbandoned("the job was cancelled")
        try:
            data = self.raw.read(size, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise SourceInterrupted(
                f"the source broke off at byte {self.position} of {self.total} "
                f"({type(exc).__name__}); a retry continues from the bytes stored"
            ) from exc
        if not data:
            raise SourceInterrupted(
                f"the source broke off at byte {self.position} of {self.total} "
                "(connection closed); a retry continues from the bytes stored"
            )
        self.position += len(data)
        return data


def source_chunks(source: requests.Response) -> Iterator[bytes]:
    """Yield the source's body; a body that breaks off raises ``SourceInterrupted``.

    requests raises a source's broken body as its own error while it sends
    the PUT to binstore, which would otherwise read as binstore's failure.
    """
    received = 0
    try:
        for chunk in source.iter_content(CHUNK_SIZE, decode_unicode=False):
            received += len(chunk)
            yield chunk
    except requests.RequestException as exc:
        raise SourceInterrupted(
            f"the source broke off after {received} bytes ({type(exc).__name__}); "
            "without a Content-Length the next attempt starts over"
        ) from exc


@dataclass
class Upload:
    """The binstore upload URL of this attempt and the file's total size, once known."""

    url: str
    size: int | None


class Importer:
    """One attempt of a box.import job."""

    def __init__(
        self,
        data: Any,
        source: requests.Session,
        binstore_url: str,
        timeout: float,
        max_size: int,
    ) -> None:
        self.data = data
        self.source = source
        self.binstore_url = binstore_url
        self.timeout = timeout
        self.max_size = max_size

    def run(self, job: JobRun) -> dict[str, Any]:
        url = job.payload["url"]
        try:
            opened = self.data.open_import_upload(job.id, job.attempt)
        except (Unprocessable, PermissionDenied) as exc:
            # The version was released or revoked since the import was
            # submitted, or its submitter lost the role to import into it.
            raise PermanentJobError(str(exc)) from exc
        if opened["completed"]:
            return {"sha256": opened["sha256"], "resumed_from": None}
        upload = self._upload(opened)

        stored = 0
        if upload.size is not None:
            stored, result = self._stored(upload)
            if result is not None:
                return {**result, "resumed_from": stored}
        try:
            return self._transfer(job, url, upload, stored)
        except (DisallowedAddress, InvalidTarget) as exc:
            raise PermanentJobError(f"the source {url_origin(url)} is not allowed: {exc}") from exc
        except FUTILE_REQUEST_ERRORS as exc:
            # A redirect loop or a redirect to another scheme fails the same way every time.
            raise PermanentJobError(
                f"request to {url_origin(url)} failed: {type(exc).__name__}; "
                "give a URL that leads to the file over http or https"
            ) from exc
        except requests.RequestException as exc:
            raise SourceInterrupted(
                f"request to {url_origin(url)} failed: {type(exc).__name__}"
            ) from exc

    def _upload(self, opened: dict[str, Any]) -> Upload:
        return Upload(f"{self.binstore_url}/uploads/{quote(opened['token'])}", opened["size"])

    def _restart(self, job: JobRun) -> Upload:
        return self._upload(self.data.open_import_upload(job.id, job.attempt, restart=True))

    def _stored(self, upload: Upload) -> tuple[int, dict[str, Any] | None]:
        """Return the bytes binstore stored, and the stored file if they complete it."""
        response = self._put(upload, headers={"Content-Range": f"bytes */{upload.size}"})
        body = self._binstore_body(response)
        if response.status_code == 202:
            return int(body["received"]), None
        return int(upload.size or 0), body

    def _transfer(self, job: JobRun, url: str, upload: Upload, stored: int) -> dict[str, Any]:
        headers = {"Accept-Encoding": "identity"}
        if stored:
            # NOTE: without If-Range, a source whose file changed but kept its
            # size gets spliced into the stored bytes. A declared checksum
            # catches that, box.inspect only if the archive breaks. Storing the
            # first response's ETag with the upload target would allow If-Range.
            headers["Range"] = f"bytes={stored}-"
        with self.source.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            try:
                self._check_status(response, url, stored)
                total, offset = self._extent(response, stored)
            except SourceChanged:
                # The bytes stored belong to another file; the next attempt starts over.
                self._restart(job)
                raise
            if total is not None and total > self.max_size:
                raise PermanentJobError(
                    f"the source's file has {total} bytes, more than the {self.max_size} "
                    "bytes binstore accepts (max_upload_size)"
                )
            if upload.size is not None and total != upload.size:
                announced = upload.size
                upload = self._restart(job)
                if offset:
                    raise SourceChanged(
                        f"the source's file changed from {announced} to {total} bytes; "
                        "the next attempt starts over"
                    )
                stored = 0
            if not total:
                # Without a length no part can be announced, so the file goes as
                # one whole upload, which a broken connection loses entirely.
                return {**self._send_whole(upload, response), "resumed_from": 0}
            body = SourceBody(response.raw, offset, stored, total, lambda: job.abandoned)
            result = self._send(upload, body, stored, total)
        return {**result, "resumed_from": stored}

    def _check_status(self, response: requests.Response, url: str, stored: int) -> None:
        status = response.status_code
        if status in (200, 206):
            return
        if status == 416 and stored:
            raise SourceChanged(
                f"the source rejected the range from byte {stored}, so its file changed; "
                "the next attempt starts over"
            )
        if 400 <= status < 500 and status not in RETRIED_STATUSES:
            raise PermanentJobError(f"the source {url_origin(url)} responded with HTTP {status}")
        raise SourceInterrupted(f"the source {url_origin(url)} responded with HTTP {status}")

    @staticmethod
    def _extent(response: requests.Response, stored: int) -> tuple[int | None, int]:
        """Return the file's total size (None if unknown) and the offset the body starts at."""
        if response.status_code == 206:
            match = CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != stored:
                raise SourceChanged(
                    "the source responded to the range request with another range; "
                    "the next attempt starts over"
                )
            return int(match.group(3)), stored
        length = response.headers.get("Content-Length", "")
        return whole_number(length), 0

    def _send(self, upload: Upload, body: SourceBody, stored: int, total: int) -> dict[str, Any]:
        response = self._put(
            upload, data=body, headers={"Content-Range": f"bytes {stored}-{total - 1}/{total}"}
        )
        result = self._binstore_body(response)
        if response.status_code == 202:
            raise SourceInterrupted(
                f"binstore stored {result.get('received')} of {total} bytes; a retry continues"
            )
        return result

    def _send_whole(self, upload: Upload, source: requests.Response) -> dict[str, Any]:
        return self._binstore_body(self._put(upload, data=source_chunks(source)))

    @staticmethod
    def _put(upload: Upload, **kwargs: Any) -> requests.Response:
        try:
            return requests.put(upload.url, timeout=BINSTORE_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            # The exception's text quotes the upload URL, whose token is a credential.
            raise BinstoreFailed(f"request to binstore failed: {type(exc).__name__}") from exc

    @staticmethod
    def _binstore_body(response: requests.Response) -> dict[str, Any]:
        """Return binstore's JSON body; raise on an error, permanently if retrying is futile."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code in (200, 201, 202):
            return dict(body)
        errors = "; ".join(body.get("errors") or []) or f"HTTP {response.status_code}"
        if response.status_code in (413, 422):
            raise PermanentJobError(f"binstore rejected the file: {errors}")
        raise BinstoreFailed(f"binstore did not store the part: {errors}")
