"""HTTP service that receives box files and serves them.

``PUT /uploads/<token>`` streams a box file to disk while hashing it and
attaches it to its provider through the data service. ``GET /blobs/<sha256>``
serves a stored file to holders of a signed, expiring token, with ``Range``,
``ETag`` and ``If-None-Match``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from services.toolkit import config as cfg
from services.toolkit.consul import ConsulRegistration
from services.toolkit.crypto import DOWNLOAD_PURPOSE, verify
from services.toolkit.errors import NotFound, PermissionDenied, Unprocessable
from services.toolkit.metrics import record_download, record_upload
from services.toolkit.operations import HttpServiceOperations, health_response
from services.toolkit.rpc import TimedRpcProxy
from services.toolkit.web import api

from .storage import CHUNK_SIZE, ChecksumMismatch, IncompleteUpload, LocalStorage

log = logging.getLogger(__name__)


class Storage(DependencyProvider):
    """The blob store under ``ATLAS.storage_root``."""

    def setup(self) -> None:
        self.storage = LocalStorage(cfg.setting(self.container.config, cfg.STORAGE_ROOT))

    def get_dependency(self, worker_ctx: Any) -> LocalStorage:
        return self.storage

    def probe_health(self) -> None:
        """Return when the storage root is a writable directory; raise OSError if not."""
        self.storage.probe()


def body_chunks(request: Request) -> Iterator[bytes]:
    stream = request.stream
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            return
        yield chunk


class BinstoreService(HttpServiceOperations):
    name = "binstore"

    consul_registration = ConsulRegistration(public_url_setting=cfg.BINSTORE_URL)
    data = TimedRpcProxy("data")
    storage = Storage()
    config = Config()

    @api("GET", "/health")
    def health(self, request: Request) -> Any:
        """Return this instance's health, as ``/health/instance`` does."""
        return health_response(self.instance_health_probes.check())

    @api("PUT", "/uploads/<token>")
    def upload(self, request: Request, token: str) -> Any:
        expected = self.data.begin_upload(token)
        try:
            sha256, size = self.storage.store(
                body_chunks(request),
                expected["checksum_type"],
                expected["checksum"],
                expected_size=request.content_length,
            )
        except (ChecksumMismatch, IncompleteUpload) as exc:
            log.warning("upload for provider %s rejected: %s", expected["provider_id"], exc)
            self.data.reject_upload(token, str(exc))
            raise Unprocessable(str(exc)) from exc
        result = self.data.finish_upload(token, sha256, size)
        record_upload(size)
        log.info("stored %s (%d bytes) for provider %s", sha256, size, result["provider_id"])
        return {"sha256": sha256, "size": size, "success": True}

    @api("GET", "/blobs/<sha256>")
    def download(self, request: Request, sha256: str) -> Any:
        key = cfg.secret_key(self.config)
        token = request.args.get("token", "")
        if not verify(key, DOWNLOAD_PURPOSE, sha256, token):
            raise PermissionDenied("the download link is invalid or expired; request the box again")
        path = self.storage.path(sha256)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the WSGI server
        except FileNotFoundError as exc:
            raise NotFound(f"blob {sha256} not found") from exc
        size = path.stat().st_size
        response = Response(
            wrap_file(request.environ, handle, CHUNK_SIZE),
            mimetype="application/octet-stream",
            direct_passthrough=True,
        )
        response.set_etag(sha256)
        response.headers["Cache-Control"] = "private, max-age=300, immutable"
        response.content_length = size
        response = response.make_conditional(request, accept_ranges=True, complete_length=size)
        if response.status_code in (200, 206):
            record_download(response.content_length or 0)
        return response
