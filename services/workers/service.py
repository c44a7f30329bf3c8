"""The worker pool service, ``workers``: one method per job kind.

Each kind consumes its own durable queue with its own pool size
(``ATLAS.job_pools``); several ``workers`` processes may run at once and
share the queues.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import requests
from nameko.dependency_providers import Config

from services.toolkit import config as cfg
from services.toolkit.consul import ServiceCatalog
from services.toolkit.crypto import DOWNLOAD_PURPOSE, SealBroken, sign, unseal
from services.toolkit.errors import NotFound
from services.toolkit.jobs import JobRun, PermanentJobError, job_kind
from services.toolkit.operations import ServiceOperations
from services.toolkit.outbound import Allowlist, guarded_session
from services.toolkit.rpc import TimedRpcProxy

from . import delivery
from .importing import Importer
from .inspection import Expectation, inspect

CHUNK_SIZE = 1024 * 1024
# Seconds to wait for binstore to connect and for each chunk of a box file.
FETCH_TIMEOUT = 30.0
# Seconds a signed URL for reading a box file stays valid.
READ_URL_TTL = 3600.0


class WorkersService(ServiceOperations):
    name = "workers"

    data = TimedRpcProxy("data")
    catalog = ServiceCatalog()
    config = Config()

    @job_kind("atlas.noop")
    def noop(self, job: JobRun) -> dict[str, Any]:
        """Do nothing and echo the payload: a probe of the job machinery and its speed."""
        return {"echo": job.payload}

    @job_kind("box.inspect")
    def inspect_box(self, job: JobRun) -> dict[str, Any]:
        """Verify an uploaded box file and let the provider be served, or reject it."""
        provider_id, sha256 = job.payload["provider_id"], job.payload["sha256"]
        try:
            target = self.data.inspection_target(provider_id)
        except NotFound as exc:
            raise PermanentJobError(str(exc)) from exc
        if target["sha256"] != sha256:
            # A newer upload replaced the file; its own job inspects it.
            return {"verdict": "superseded", "reason": "the provider has a newer file"}

        expected = Expectation(
            provider=target["provider"],
            architecture=target["architecture"],
            sha256=sha256,
            checksum_type=target["checksum_type"],
            checksum=target["checksum"],
        )
        with requests.get(self._blob_url(sha256), stream=True, timeout=FETCH_TIMEOUT) as response:
            if response.status_code == 404:
                raise PermanentJobError(f"binstore has no file {sha256}")
            response.raise_for_status()
            verdict = inspect(response.iter_content(CHUNK_SIZE), expected)

        recorded = self.data.record_inspection(
            provider_id, sha256, verdict.verified, verdict.reason, checked=target
        )
        if not recorded:
            # The provider changed during the inspection; its newer job decides.
            return {"verdict": "superseded", "reason": "the provider changed during inspection"}
        return verdict.as_result()

    @job_kind("webhook.deliver")
    def deliver_webhook(self, job: JobRun) -> dict[str, Any]:
        """POST an event to a subscriber's URL, signed with the subscription's secret."""
        try:
            target = self.data.webhook_delivery_target(job.payload["webhook_id"])
        except NotFound as exc:
            raise PermanentJobError(str(exc)) from exc
        try:
            secret = unseal(cfg.secret_key(self.config), target["secret_sealed"])
        except SealBroken as exc:
            raise PermanentJobError(
                f"the secret of webhook {target['id']} cannot be read: {exc}"
            ) from exc
        timeout = float(cfg.setting(self.config, cfg.WEBHOOK_TIMEOUT))
        with guarded_session(Allowlist.from_config(self.config)) as session:
            return delivery.deliver(session, target["url"], job, secret, timeout)

    @job_kind("box.import")
    def import_box(self, job: JobRun) -> dict[str, Any]:
        """Fetch a provider's box file from a URL into binstore, where box.inspect follows."""
        importer = Importer(
            self.data,
            guarded_session(Allowlist.from_config(self.config)),
            self.catalog.public_url("binstore", cfg.BINSTORE_URL),
            timeout=float(cfg.setting(self.config, cfg.IMPORT_TIMEOUT)),
            max_size=int(cfg.setting(self.config, cfg.MAX_UPLOAD_SIZE)),
        )
        try:
            return importer.run(job)
        except NotFound as exc:
            raise PermanentJobError(str(exc)) from exc
        finally:
            importer.source.close()

    def _blob_url(self, sha256: str) -> str:
        token = sign(cfg.secret_key(self.config), DOWNLOAD_PURPOSE, sha256, READ_URL_TTL)
        base = self.catalog.public_url("binstore", cfg.BINSTORE_URL)
        return f"{base}/blobs/{sha256}?{urlencode({'token': token})}"
