"""HTTP service that receives box files and serves them.

``PUT /uploads/<token>`` streams a box file into storage while hashing it
and attaches it to its provider through the data service. The ``uploads``
module describes whole and resumable uploads. ``GET /blobs/<sha256>`` serves a
stored file with ``sendfile`` to holders of a signed, expiring token, with
``Range``, ``ETag`` and ``If-None-Match``. Garbage collection runs on a
timer and on request over RPC (``atlas gc``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request

from services.toolkit import config as cfg
from services.toolkit.consul import ConsulRegistration
from services.toolkit.crypto import DOWNLOAD_PURPOSE, verify
from services.toolkit.errors import NotFound, PermissionDenied, ServiceUnavailable
from services.toolkit.metrics import record_download, record_upload
from services.toolkit.operations import HttpServiceOperations, health_response
from services.toolkit.rpc import TimedRpcProxy, rpc
from services.toolkit.timer import setting_timer
from services.toolkit.web import api

from . import garbage
from .browser import BrowserUploadRoutes
from .digests import DigestCache
from .downloads import blob_response
from .storage import BlobNotFound, BlobStorage, storage_from_config
from .uploads import UploadReceiver

log = logging.getLogger(__name__)

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class Storage(DependencyProvider):
    """The storage backend the configuration names."""

    def setup(self) -> None:
        self.storage = storage_from_config(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> BlobStorage:
        return self.storage

    def probe_health(self) -> None:
        """Return when the storage root is a writable directory; raise OSError if not."""
        self.storage.probe()


class ResumeDigests(DependencyProvider):
    """Digests of partial uploads kept between their parts, shared by the workers."""

    def setup(self) -> None:
        self.cache = DigestCache()

    def get_dependency(self, worker_ctx: Any) -> DigestCache:
        return self.cache


class BinstoreService(HttpServiceOperations, BrowserUploadRoutes):
    name = "binstore"

    consul_registration = ConsulRegistration(public_url_setting=cfg.BINSTORE_URL)
    data = TimedRpcProxy("data")
    storage = Storage()
    resume_digests = ResumeDigests()
    config = Config()

    @api("GET", "/health")
    def health(self, request: Request) -> Any:
        """Return this instance's health, as ``/health/instance`` does."""
        return health_response(self.instance_health_probes.check())

    @api("PUT", "/uploads/<token>")
    def upload(self, request: Request, token: str) -> Any:
        result = self.upload_receiver().receive(request, token)
        if isinstance(result, dict):
            record_upload(result["size"])
        return result

    def upload_receiver(self) -> UploadReceiver:
        max_size = int(cfg.setting(self.config, cfg.MAX_UPLOAD_SIZE))
        return UploadReceiver(self.storage, self.data, self.resume_digests, max_size)

    @api("GET", "/blobs/<sha256>")
    def download(self, request: Request, sha256: str) -> Any:
        key = cfg.secret_key(self.config)
        token = request.args.get("token", "")
        if not verify(key, DOWNLOAD_PURPOSE, sha256, token):
            raise PermissionDenied("the download link is invalid or expired; request the box again")
        if not SHA256_PATTERN.match(sha256):
            raise NotFound(f"blob {sha256} not found")
        try:
            blob = self.storage.open_blob(sha256)
        except BlobNotFound as exc:
            raise NotFound(f"blob {sha256} not found") from exc
        response = blob_response(request, blob, sha256)
        if response.status_code in (200, 206) and request.method != "HEAD":
            record_download(response.content_length or 0)
        return response

    @rpc
    def collect_garbage(self, dry_run: bool = False) -> dict:
        """Remove unreferenced blobs, dead partial uploads, stale temporary files and old targets.

        Returns what was removed, or with ``dry_run`` what would be, as
        ``services.binstore.garbage.collect_garbage`` describes.
        """
        grace_period = float(cfg.setting(self.config, cfg.GC_GRACE_PERIOD))
        return garbage.collect_garbage(self.storage, self.data, grace_period, dry_run)

    # NOTE: once the jobs system exists, this could submit a garbage
    # collection job instead, so that each run is recorded with its history
    # and only one runs at a time across binstore instances.
    @setting_timer(cfg.GC_INTERVAL)
    def collect_garbage_periodically(self) -> None:
        grace_period = float(cfg.setting(self.config, cfg.GC_GRACE_PERIOD))
        try:
            garbage.collect_garbage(self.storage, self.data, grace_period, dry_run=False)
        except ServiceUnavailable as exc:
            log.warning("garbage collection skipped until the next interval: %s", exc)
