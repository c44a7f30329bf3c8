"""RPC methods for jobs: submission, the dispatcher's and workers' transitions, the API's views."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.toolkit import config as cfg
from services.toolkit.errors import AtlasError

from .. import imports, jobs
from ..access import Actor
from .base import DataBase

# Jobs the dispatcher handles per call, so one sweep stays short.
SWEEP_BATCH = 500


class JobsRpc(DataBase):
    @rpc(expected_exceptions=AtlasError)
    def submit_job(
        self,
        kind: str,
        payload: dict[str, Any],
        box: str | None = None,
        account: str | None = None,
        max_attempts: int | None = None,
        delay: float | None = None,
    ) -> dict:
        """Create a pending job; ``box`` is "username/name", ``account`` a user or organization."""
        with self.db.transaction() as unit:
            return jobs.submit_job(unit, kind, payload, box, account, max_attempts, delay)

    # The dispatcher's side

    @rpc(expected_exceptions=AtlasError)
    def job_dispatch_state(self, job_id: int) -> dict:
        """Return ``{"id", "kind", "state", "attempt", "due"}`` of one job."""
        with self.db.read() as session:
            return jobs.pending_state(session, job_id)

    @rpc(expected_exceptions=AtlasError)
    def dispatchable_jobs(self, pending_after: float, limit: int = SWEEP_BATCH) -> list:
        """Return ``[{"id", "kind", "attempt"}]`` of due retrying jobs and missed pending ones."""
        with self.db.read() as session:
            return jobs.dispatchable(session, pending_after, limit)

    @rpc(expected_exceptions=AtlasError)
    def queued_jobs(self, after_id: int = 0, limit: int = SWEEP_BATCH) -> list:
        """Return ``[{"id", "kind", "attempt"}]`` of queued jobs with ids above ``after_id``."""
        with self.db.read() as session:
            return jobs.queued(session, after_id, limit)

    @rpc(expected_exceptions=AtlasError)
    def mark_job_queued(self, job_id: int, attempt: int, actor: str = "jobs") -> dict:
        """Record that the broker confirmed the message of ``attempt``; raise InvalidTransition."""
        with self.db.transaction() as unit:
            return jobs.mark_queued(unit, job_id, attempt, actor)

    @rpc(expected_exceptions=AtlasError)
    def expire_job_leases(self, actor: str = "jobs", limit: int = SWEEP_BATCH) -> dict:
        """Take back running jobs whose lease passed; return ``{"expired": count}``."""
        with self.db.read() as session:
            candidates = jobs.expired_job_ids(session, limit)
        expired = 0
        for job_id in candidates:
            with self.db.transaction() as unit:
                expired += jobs.expire(unit, job_id, actor)
        return {"expired": expired}

    # The workers' side

    @rpc(expected_exceptions=AtlasError)
    def start_job(self, job_id: int, attempt: int, worker: str) -> dict:
        """Claim a queued job; return its kind, payload and lease, or raise InvalidTransition."""
        with self.db.transaction() as unit:
            return jobs.start(unit, job_id, attempt, worker)

    @rpc(expected_exceptions=AtlasError)
    def heartbeat_job(self, job_id: int, attempt: int) -> dict:
        """Extend a running attempt's lease; raise InvalidTransition once it was cancelled."""
        with self.db.transaction() as unit:
            return jobs.heartbeat(unit, job_id, attempt)

    @rpc(expected_exceptions=AtlasError)
    def succeed_job(
        self, job_id: int, attempt: int, worker: str, result: dict | None = None
    ) -> dict:
        with self.db.transaction() as unit:
            return jobs.succeed(unit, job_id, attempt, worker, result)

    @rpc(expected_exceptions=AtlasError)
    def fail_job(
        self, job_id: int, attempt: int, worker: str, error: str, permanent: bool = False
    ) -> dict:
        """Record a failed attempt: retrying with backoff, or failed when ``permanent`` or last."""
        with self.db.transaction() as unit:
            return jobs.fail(unit, job_id, attempt, worker, error, permanent)

    @rpc(expected_exceptions=AtlasError)
    def create_job_upload_target(self, job_id: int, attempt: int) -> dict:
        """Return ``{"token", "expires_at"}`` for a running box.import attempt's upload."""
        ttl = float(cfg.setting(self.config, cfg.UPLOAD_TARGET_TTL))
        with self.db.transaction() as unit:
            return imports.create_job_upload_target(unit, job_id, attempt, ttl)

    # The public API's side

    @rpc(expected_exceptions=AtlasError)
    def list_jobs(self, actor: Actor, filters: dict) -> dict:
        """Return ``{"jobs", "next_before"}``: jobs ``actor`` may read, newest first."""
        with self.db.read() as session:
            return jobs.list_jobs(session, actor, filters)

    @rpc(expected_exceptions=AtlasError)
    def get_job(self, actor: Actor, job_id: int) -> dict:
        with self.db.read() as session:
            return jobs.get_job(session, actor, job_id)

    @rpc(expected_exceptions=AtlasError)
    def cancel_job(self, actor: Actor, job_id: int) -> dict:
        with self.db.transaction() as unit:
            return jobs.cancel(unit, actor, job_id)

    @rpc(expected_exceptions=AtlasError)
    def retry_job(self, actor: Actor, job_id: int) -> dict:
        with self.db.transaction() as unit:
            return jobs.retry(unit, actor, job_id)

    @rpc(expected_exceptions=AtlasError)
    def import_provider(
        self,
        actor: Actor,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None,
        fields: dict,
    ) -> dict:
        """Submit box.import for a provider and return the job."""
        with self.db.transaction() as unit:
            return imports.import_provider(
                unit, actor, username, name, version, provider, architecture, fields
            )

    # Operators (the atlas command)

    @rpc(expected_exceptions=AtlasError)
    def list_all_jobs(self, filters: dict) -> dict:
        """Like ``list_jobs`` without access checks; for trusted callers only."""
        with self.db.read() as session:
            return jobs.list_all_jobs(session, filters)

    @rpc(expected_exceptions=AtlasError)
    def get_any_job(self, job_id: int) -> dict:
        """Like ``get_job`` without access checks; for trusted callers only."""
        with self.db.read() as session:
            return jobs.get_any_job(session, job_id)
