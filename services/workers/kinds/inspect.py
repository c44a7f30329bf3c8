"""box.inspect: read an uploaded box from binstore and decide whether it may be served.

The file is streamed once: every digest is computed on the way while the
tar stream (plain, gzip, bzip2 or xz) is searched for ``metadata.json``.
A box is verified when its digests match the stored and declared
checksums and its metadata names the provider's provider and, if both
give one, its architecture. The verdict is the job's result; the data
service applies it to the provider when it stores the job's success.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zlib
from typing import Any
from urllib.parse import urlencode

import requests

from services.toolkit import config as cfg
from services.toolkit.crypto import DOWNLOAD_PURPOSE, sign

from ..registry import Job, PermanentFailure, job_kind

CHUNK_SIZE = 1024 * 1024  # bytes read from binstore per step
MAX_METADATA_BYTES = 1024 * 1024
# Vagrant's name for "no architecture given"; it matches any box.
UNKNOWN_ARCHITECTURE = "unknown"


class Rejected(Exception):
    """The box is unusable; the message explains why to the publisher."""


class TransferError(Exception):
    """Reading from binstore failed; another attempt may succeed."""


class HashingReader(io.RawIOBase):
    """A readable stream that feeds every byte it passes on to its hashers."""

    def __init__(self, raw: Any, hashers: list[Any], job: Job) -> None:
        self.raw = raw
        self.hashers = hashers
        self.job = job
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            chunk = self.raw.read(min(len(buffer), CHUNK_SIZE))
        except Exception as exc:
            # Kept apart from the archive's own errors, which reject the box.
            raise TransferError(f"reading the box from binstore failed: {exc}") from exc
        if not chunk:
            return 0
        for hasher in self.hashers:
            hasher.update(chunk)
        previous, self.size = self.size, self.size + len(chunk)
        if previous // (64 * CHUNK_SIZE) != self.size // (64 * CHUNK_SIZE):
            self.job.check_cancelled()
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def drain(self) -> None:
        while self.read(CHUNK_SIZE):
            pass


def blob_url(config: dict[str, Any], sha256: str) -> str:
    token = sign(
        cfg.secret_key(config),
        DOWNLOAD_PURPOSE,
        sha256,
        float(cfg.setting(config, cfg.DOWNLOAD_URL_TTL)),
    )
    base = str(cfg.setting(config, cfg.BINSTORE_URL)).rstrip("/")
    return f"{base}/blobs/{sha256}?{urlencode({'token': token})}"


def read_metadata(stream: HashingReader) -> dict[str, Any]:
    """Return the parsed ``metadata.json`` of the box tar stream; raise ``Rejected``."""
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for member in archive:
                if member.name.removeprefix("./") != "metadata.json":
                    continue
                if not member.isfile() or member.size > MAX_METADATA_BYTES:
                    raise Rejected(
                        f"metadata.json must be a regular file of at most "
                        f"{MAX_METADATA_BYTES} bytes"
                    )
                handle = archive.extractfile(member)
                assert handle is not None
                raw = handle.read()
                break
            else:
                raise Rejected("the box has no metadata.json at the top of its archive")
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise Rejected(f"the box is not a tar archive (plain, gzip, bzip2 or xz): {exc}") from exc
    try:
        metadata = json.loads(raw)
    except ValueError as exc:
        raise Rejected(f"metadata.json is not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise Rejected("metadata.json must contain a JSON object")
    return metadata


def check_metadata(metadata: dict[str, Any], payload: dict[str, Any]) -> None:
    provider = metadata.get("provider")
    if provider != payload["provider"]:
        raise Rejected(
            f"metadata.json names provider {provider!r}, but the box was uploaded for "
            f"provider {payload['provider']!r}"
        )
    architecture = metadata.get("architecture")
    expected = payload.get("architecture") or UNKNOWN_ARCHITECTURE
    if architecture and expected != UNKNOWN_ARCHITECTURE and architecture != expected:
        raise Rejected(
            f"metadata.json names architecture {architecture!r}, but the box was uploaded "
            f"for architecture {expected!r}"
        )


def check_digests(payload: dict[str, Any], stream: HashingReader, digests: dict[str, Any]) -> None:
    if stream.size != payload.get("size", stream.size):
        raise Rejected(f"the stored file has {stream.size} bytes, not {payload['size']}")
    stored = digests["sha256"].hexdigest()
    if stored != payload["sha256"]:
        raise Rejected(f"the stored file's sha256 is {stored}, not {payload['sha256']}")
    checksum_type, checksum = payload.get("checksum_type"), payload.get("checksum")
    if checksum_type and checksum:
        received = digests[checksum_type].hexdigest()
        if received != checksum.lower():
            raise Rejected(
                f"checksum mismatch: declared {checksum_type} {checksum.lower()}, "
                f"the file has {received}"
            )


@job_kind("box.inspect")
def inspect_box(job: Job) -> dict[str, Any]:
    payload = job.payload
    digests = {"sha256": hashlib.sha256()}
    if payload.get("checksum_type"):
        digests.setdefault(payload["checksum_type"], hashlib.new(payload["checksum_type"]))
    timeout = float(cfg.job_setting(job.config, cfg.JOB_HTTP_TIMEOUT, job.kind))

    with requests.get(
        blob_url(job.config, payload["sha256"]), stream=True, timeout=timeout
    ) as response:
        if response.status_code == 404:
            raise PermanentFailure(f"blob {payload['sha256']} is not in binstore")
        response.raise_for_status()
        stream = HashingReader(response.raw, list(digests.values()), job)
        metadata: dict[str, Any] = {}
        try:
            metadata = read_metadata(stream)
            stream.drain()
            check_digests(payload, stream, digests)
            check_metadata(metadata, payload)
        except Rejected as exc:
            return verdict("rejected", str(exc), metadata)
    return verdict("verified", None, metadata)


def verdict(outcome: str, reason: str | None, metadata: dict[str, Any]) -> dict[str, Any]:
    shown = {
        key: metadata[key] for key in ("provider", "architecture", "format") if key in metadata
    }
    return {"verdict": outcome, "reason": reason, "metadata": shown}
