"""RPC methods of the job state machine, for the dispatcher, the workers and the gateway.

Workers name the attempt they run in every report, so a report from an
attempt that no longer counts (its lease expired, the job was cancelled)
changes nothing.
"""

from __future__ import annotations

from typing import Any

from services.toolkit.errors import InvalidInput
from services.toolkit.rpc import rpc

from .. import jobs
from ..access import Actor, readable_account_ids, require_actor
from .base import DataBase


class JobsRpc(DataBase):
    @rpc
    def submit_job(
        self,
        kind: str,
        payload: dict[str, Any],
        account_id: int | None = None,
        box_id: int | None = None,
        max_attempts: int | None = None,
    ) -> dict[str, Any]:
        """Create a pending job and return it; the dispatcher queues it."""
        with self.db.transaction() as unit:
            job = jobs.submit(
                unit,
                kind,
                payload,
                self.policy,
                account_id=account_id,
                box_id=box_id,
                max_attempts=max_attempts,
            )
            return jobs.job_dict(job)

    @rpc
    def submit_jobs(
        self,
        kind: str,
        payloads: list[dict[str, Any]],
        account_id: int | None = None,
        box_id: int | None = None,
        max_attempts: int | None = None,
    ) -> list[dict[str, Any]]:
        """Create a pending job of ``kind`` for each payload in one transaction; return them.

        All are created or, on invalid input, none.
        """
        with self.db.transaction() as unit:
            created = jobs.submit_many(
                unit,
                kind,
                payloads,
                self.policy,
                account_id=account_id,
                box_id=box_id,
                max_attempts=max_attempts,
            )
            return [jobs.job_dict(job) for job in created]

    @rpc
    def due_jobs(self, limit: int = 500) -> list[dict[str, Any]]:
        """Return the messages to publish for missed pending and due retrying jobs."""
        with self.db.transaction() as unit:
            return jobs.due_jobs(unit, self.policy, limit)

    @rpc
    def mark_jobs_queued(self, job_ids: list[int]) -> int:
        with self.db.transaction() as unit:
            return jobs.mark_queued(unit, self.policy, job_ids)

    @rpc
    def queued_jobs(self, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Return messages of queued jobs in id order, a page at a time, for a rebuild."""
        with self.db.read() as session:
            return jobs.queued_messages(session, after_id, limit)

    @rpc
    def start_job(self, job_id: int, attempt: int, worker: str) -> dict[str, Any]:
        with self.db.transaction() as unit:
            return jobs.start(unit, self.policy, job_id, attempt, worker)

    @rpc
    def start_jobs(self, attempts: list[dict[str, int]], worker: str) -> list[dict[str, Any]]:
        """Start many attempts in one transaction, each as ``start_job`` would.

        ``attempts`` contains ``{"job_id", "attempt"}`` objects, and the outcomes
        come back in the same order.
        """
        pairs = _attempts(attempts)
        with self.db.transaction() as unit:
            return jobs.start_many(unit, self.policy, pairs, worker)

    @rpc
    def heartbeat_job(self, job_id: int, attempt: int) -> str:
        with self.db.transaction() as unit:
            return jobs.heartbeat(unit, self.policy, job_id, attempt)

    @rpc
    def succeed_job(
        self, job_id: int, attempt: int, worker: str, result: dict[str, Any] | None = None
    ) -> str:
        with self.db.transaction() as unit:
            return jobs.succeed(unit, self.policy, job_id, attempt, worker, result)

    @rpc
    def succeed_jobs(self, outcomes: list[dict[str, Any]], worker: str) -> list[str | None]:
        """Record many successful attempts in one transaction, each as ``succeed_job`` would.

        ``outcomes`` contains ``{"job_id", "attempt", "result"}`` objects, and the
        jobs' states come back in the same order, None for a job that no
        longer exists.
        """
        triples = _outcomes(outcomes)
        with self.db.transaction() as unit:
            return jobs.succeed_many(unit, self.policy, triples, worker)

    @rpc
    def report_jobs(
        self, outcomes: list[dict[str, Any]], attempts: list[dict[str, int]], worker: str
    ) -> dict[str, list[Any]]:
        """Record successes as ``succeed_jobs`` would, then start attempts as ``start_jobs``.

        One transaction covers both, so a worker reports the jobs it finished
        and starts the next ones in one call. Returns ``{"succeeded": [...],
        "started": [...]}``, each in the order of its list.
        """
        triples, pairs = _outcomes(outcomes), _attempts(attempts)
        with self.db.transaction() as unit:
            return jobs.report(unit, self.policy, triples, pairs, worker)

    @rpc
    def fail_job(
        self, job_id: int, attempt: int, worker: str, error: str, permanent: bool = False
    ) -> str:
        with self.db.transaction() as unit:
            return jobs.fail(unit, self.policy, job_id, attempt, worker, error, permanent)

    @rpc
    def cancel_job(self, actor: Actor, job_id: int) -> dict[str, Any]:
        with self.db.transaction() as unit:
            return jobs.cancel(unit, self.policy, actor, job_id)

    @rpc
    def retry_job(self, actor: Actor, job_id: int) -> dict[str, Any]:
        """Give a failed job a fresh allowance of attempts and queue it again."""
        with self.db.transaction() as unit:
            return jobs.retry(unit, self.policy, actor, job_id)

    @rpc
    def get_job(self, actor: Actor, job_id: int) -> dict[str, Any]:
        """Return a job with its payload and history if the actor may see it."""
        with self.db.read() as session:
            return jobs.describe(session, require_actor(actor), job_id)

    @rpc
    def list_jobs(self, actor: Actor, **filters: Any) -> dict[str, Any]:
        """Return a page of the jobs of the accounts the actor belongs to, newest first.

        ``filters`` are ``state``, ``kind``, ``box`` (``username/name``),
        ``before`` (a job id) and ``limit``.
        """
        with self.db.read() as session:
            account_ids = readable_account_ids(session, require_actor(actor))
            return jobs.find(session, account_ids, **filters)

    @rpc
    def describe_job(self, job_id: int) -> dict[str, Any]:
        """Return any job with its history, for operators (``atlas jobs show``)."""
        with self.db.read() as session:
            return jobs.describe(session, None, job_id)

    @rpc
    def find_jobs(self, **filters: Any) -> dict[str, Any]:
        """Return a page of all jobs, for operators (``atlas jobs list``)."""
        with self.db.read() as session:
            return jobs.find(session, None, **filters)

    @rpc
    def job_counts(self) -> dict[str, int]:
        with self.db.read() as session:
            return jobs.counts(session)

    @rpc
    def job_counts_by_kind(self) -> list[dict[str, Any]]:
        """Return ``[{"kind", "state", "count"}]``, for the dispatcher's ``atlas_jobs`` gauge."""
        with self.db.read() as session:
            return jobs.counts_by_kind(session)


def _attempts(attempts: list[dict[str, int]]) -> list[tuple[int, int]]:
    try:
        return [(int(item["job_id"]), int(item["attempt"])) for item in attempts]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            'attempts must be a list of {"job_id", "attempt"} objects with whole numbers'
        ) from exc


def _outcomes(outcomes: list[dict[str, Any]]) -> list[tuple[int, int, dict[str, Any] | None]]:
    try:
        return [
            (int(item["job_id"]), int(item["attempt"]), item.get("result")) for item in outcomes
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            'outcomes must be a list of {"job_id", "attempt", "result"} objects'
        ) from exc
