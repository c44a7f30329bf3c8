"""HTTP service that receives box files and serves them.

``PUT /uploads/<token>`` streams a box file to disk while hashing it and
attaches it to its provider through the data service. ``GET /blobs/<sha256>``
serves a stored file to holders of a signed, expiring token, with ``Range``,
``ETag`` and ``If-None-Match``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from services.toolkit import config as cfg
from services.toolkit.crypto import DOWNLOAD_PURPOSE, verify
from services.toolkit.errors import NotFound, PermissionDenied, Unprocessable
from services.toolkit.rpc import TimedRpcProxy
from services.toolkit.web import api

from .browser import BrowserUploadRoutes
from .storage import CHUNK_SIZE, ChecksumMismatch, IncompleteUpload, LocalStorage

log = logging.getLogger(__name__)


class Storage(DependencyProvider):
    """The blob store under ``ATLAS.storage_root``."""

    def setup(self) -> None:
        self.storage = LocalStorage(cfg.setting(self.container.config, cfg.STORAGE_ROOT))

    def get_dependency(self, worker_ctx: Any) -> LocalStorage:
        return self.storage


def body_chunks(request: Request) -> Iterator[bytes]:
    stream = request.stream
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            return
        yield chunk


class BinstoreService(BrowserUploadRoutes):
    name = "binstore"

    data = TimedRpcProxy("data")
    storage = Storage()
    config = Config()

    @api("PUT", "/uploads/<token>")
    def upload(self, request: Request, token: str) -> Any:
        return self.receive(token, body_chunks(request), request.content_length)

    def receive(self, token: str, chunks: Iterable[bytes], expected_size: int | None) -> dict:
        """Store the file for upload target ``token`` and attach it to its provider."""
        expected = self.data.begin_upload(token)
        try:
            sha256, size = self.storage.store(
                chunks,
                expected["checksum_type"],
                expected["checksum"],
                expected_size=expected_size,
            )
        except (ChecksumMismatch, IncompleteUpload) as exc:
            log.warning("upload for provider %s rejected: %s", expected["provider_id"], exc)
            self.data.reject_upload(token, str(exc))
            raise Unprocessable(str(exc)) from exc
        result = self.data.finish_upload(token, sha256, size)
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
        return response.make_conditional(request, accept_ranges=True, complete_length=size)
