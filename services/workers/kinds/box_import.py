"""box.import: fetch a box from a URL into binstore, resuming where a download broke off.

The partial file stays in ``ATLAS.jobs.import_dir`` across attempts of the
job. A later attempt on the same host requests the rest with ``Range`` and
``If-Range``, so a source that changed its file sends it whole again.
Requests go through the outbound guard, which rejects private, loopback and
link-local addresses unless ``ATLAS.outbound_allowlist`` lists them.

The finished file is checked against the declared checksum and uploaded to
binstore with an upload target of this job's attempt. binstore then
attaches it to the provider, and that submits box.inspect as every upload
does.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import requests

from services.toolkit import config as cfg
from services.toolkit.outbound import DisallowedAddress, guarded_session

from ..registry import Job, JobCancelled, PermanentFailure, job_kind

log = logging.getLogger(__name__)

# Bytes read per step; a broken connection loses at most the step in progress.
CHUNK_SIZE = 64 * 1024
# Times one attempt requests the rest of the file after the connection broke.
RESUMES_PER_ATTEMPT = 3
GONE_STATUSES = frozenset({401, 403, 404, 410})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class IncompleteDownload(Exception):
    """The source closed the connection before sending the whole file."""


class Download:
    """The partial file of one job and the validator (ETag) it was fetched under."""

    def __init__(self, directory: Path, job: Job) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"job-{job.id}.part"
        self.validator_path = directory / f"job-{job.id}.validator"

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    @property
    def validator(self) -> str | None:
        if not self.validator_path.exists():
            return None
        return self.validator_path.read_text() or None

    def restart(self, validator: str | None) -> None:
        self.path.write_bytes(b"")
        self.validator_path.write_text(validator or "")

    # NOTE: a worker host that dies mid-download leaves its partial file
    # behind; nothing removes files of jobs that ended elsewhere.
    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.validator_path.unlink(missing_ok=True)


def _validator(response: requests.Response) -> str | None:
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified")


def _expected_total(response: requests.Response, offset: int) -> int | None:
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            raise IncompleteDownload("the source responded with a range that does not fit")
        return int(match.group(3)) if match.group(3) != "*" else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def fetch(session: requests.Session, url: str, download: Download, job: Job) -> None:
    """Fetch ``url`` into the download's file, continuing a partial file when possible."""
    max_bytes = int(cfg.job_setting(job.config, cfg.JOB_IMPORT_MAX_BYTES, job.kind))
    timeout = float(cfg.job_setting(job.config, cfg.JOB_HTTP_TIMEOUT, job.kind))
    offset = download.size
    headers = {}
    if offset and download.validator:
        headers = {"Range": f"bytes={offset}-", "If-Range": download.validator}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code in GONE_STATUSES:
            raise PermanentFailure(
                f"the source responded with HTTP {response.status_code} for {url}"
            )
        if response.status_code == 416 and offset:
            download.restart(None)
            raise IncompleteDownload("the source rejected the range; starting over")
        response.raise_for_status()
        if response.status_code != 206:
            download.restart(_validator(response))
            offset = 0
        total = _expected_total(response, offset)
        if total is not None and total > max_bytes:
            raise PermanentFailure(f"the box has {total} bytes, more than the {max_bytes} allowed")
        size = offset
        with open(download.path, "ab") as handle:
            for chunk in response.iter_content(CHUNK_SIZE):
                handle.write(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raise PermanentFailure(f"the box is larger than the {max_bytes} bytes allowed")
                job.check_cancelled()
    if total is not None and size < total:
        raise IncompleteDownload(f"received {size} of {total} bytes")


def fetch_with_resumes(session: requests.Session, url: str, download: Download, job: Job) -> None:
    for remaining in range(RESUMES_PER_ATTEMPT, -1, -1):
        try:
            fetch(session, url, download, job)
            return
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            IncompleteDownload,
        ) as exc:
            if remaining == 0:
                raise RuntimeError(
                    f"download of {url} broke off at {download.size} bytes: {exc}"
                ) from exc
            log.info("job %s: download broke off at %d bytes, resuming", job.id, download.size)


def verify(download: Download, checksum_type: str | None, checksum: str | None) -> str:
    """Return the file's sha256; raise ``PermanentFailure`` on a checksum mismatch."""
    sha256 = hashlib.sha256()
    declared = hashlib.new(checksum_type) if checksum_type and checksum_type != "sha256" else None
    with open(download.path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            sha256.update(chunk)
            if declared is not None:
                declared.update(chunk)
    digest = sha256.hexdigest()
    if checksum_type and checksum:
        received = declared.hexdigest() if declared is not None else digest
        if received != checksum.lower():
            raise PermanentFailure(
                f"checksum mismatch: declared {checksum_type} {checksum.lower()}, "
                f"the downloaded file has {received}"
            )
    return digest


def upload(job: Job, download: Download) -> dict[str, Any]:
    token = job.data.create_job_upload_target(job.id, job.attempt)["token"]
    base = str(cfg.setting(job.config, cfg.BINSTORE_URL)).rstrip("/")
    timeout = float(cfg.job_setting(job.config, cfg.JOB_HTTP_TIMEOUT, job.kind))
    with open(download.path, "rb") as handle:
        response = requests.put(
            f"{base}/uploads/{token}",
            data=handle,
            headers={"Content-Length": str(download.size)},
            timeout=timeout,
        )
    if response.status_code == 422:
        raise PermanentFailure(f"binstore rejected the file: {response.json().get('errors')}")
    response.raise_for_status()
    return dict(response.json())


@job_kind("box.import")
def import_box(job: Job) -> dict[str, Any]:
    payload = job.payload
    directory = Path(str(cfg.job_setting(job.config, cfg.JOB_IMPORT_DIR, job.kind)))
    download = Download(directory, job)
    resumed_from = download.size
    try:
        with guarded_session(job.config) as session:
            fetch_with_resumes(session, payload["url"], download, job)
        digest = verify(download, payload.get("checksum_type"), payload.get("checksum"))
        stored = upload(job, download)
    except DisallowedAddress as exc:
        download.remove()
        raise PermanentFailure(f"source URL {payload['url']} is not allowed: {exc}") from exc
    except (PermanentFailure, JobCancelled):
        download.remove()
        raise
    download.remove()
    return {"sha256": digest, "size": stored["size"], "resumed_from": resumed_from}
