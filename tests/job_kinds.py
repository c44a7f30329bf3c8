"""Job kinds that exist only for tests, run by a worker service built on the toolkit.

``test.effect`` applies an effect the way a well-behaved job does: keyed by
the job's id, so that a retry of an attempt that died after applying it
does not apply it again. Every attempt that reaches the effect is logged in
``test_attempts`` and the effect itself in ``test_effects``, so tests can
see both the retries and that each effect landed once.
"""

from __future__ import annotations

import time
from typing import Any

import eventlet
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, text

from services.toolkit import config as cfg
from services.toolkit.jobs import JobRun, PermanentJobError, job_kind, worker_name
from services.toolkit.rpc import TimedRpcProxy

CREATE_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS test_attempts (
        id bigserial PRIMARY KEY,
        job_id bigint NOT NULL,
        attempt integer NOT NULL,
        worker text NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS test_effects (
        id bigserial PRIMARY KEY,
        job_id bigint NOT NULL,
        attempt integer NOT NULL
    )
    """,
)
# Applies the effect unless an earlier attempt of the job applied it. Two
# attempts running at once could both pass the check. The state machine
# must prevent that, and a test that counts rows would detect it.
APPLY_EFFECT = """
INSERT INTO test_effects (job_id, attempt)
SELECT :job_id, :attempt
WHERE NOT EXISTS (SELECT 1 FROM test_effects WHERE job_id = :job_id)
"""


class Effects(DependencyProvider):
    def setup(self) -> None:
        self.engine = create_engine(cfg.database_url(self.container.config))
        with self.engine.begin() as connection:
            for statement in CREATE_TABLES:
                connection.execute(text(statement))

    def stop(self) -> None:
        self.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> Effects:
        return self

    def record(self, job: JobRun, worker: str) -> None:
        values = {"job_id": job.id, "attempt": job.attempt, "worker": worker}
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO test_attempts (job_id, attempt, worker) "
                    "VALUES (:job_id, :attempt, :worker)"
                ),
                values,
            )
        with self.engine.begin() as connection:
            connection.execute(text(APPLY_EFFECT), values)


class TestWorkers:
    name = "test_workers"

    data = TimedRpcProxy("data")
    config = Config()
    effects = Effects()

    @job_kind("test.flaky")
    def flaky(self, job: JobRun) -> dict[str, Any]:
        """Fail every attempt before ``succeed_on``, then succeed."""
        if job.attempt < job.payload.get("succeed_on", 1):
            raise RuntimeError(f"attempt {job.attempt} fails on purpose")
        return {"attempt": job.attempt}

    @job_kind("test.permanent")
    def permanent(self, job: JobRun) -> None:
        raise PermanentJobError("this job can never succeed")

    @job_kind("test.slow")
    def slow(self, job: JobRun) -> dict[str, Any]:
        """Run for ``seconds`` or until the attempt is abandoned (cancelled)."""
        deadline = time.monotonic() + float(job.payload.get("seconds", 30))
        while time.monotonic() < deadline and not job.abandoned:
            eventlet.sleep(0.05)
        return {"abandoned": job.abandoned}

    @job_kind("test.effect")
    def effect(self, job: JobRun) -> dict[str, Any]:
        """Apply the job's effect after ``seconds``; a crash before that applies none."""
        eventlet.sleep(float(job.payload.get("seconds", 0)))
        self.effects.record(job, worker_name())
        return {"recorded": True}
