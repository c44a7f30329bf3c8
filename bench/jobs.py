"""End-to-end jobs, submit to succeeded: Atlas beside Celery on the same RabbitMQ.

Both sides run no-op jobs with the same worker concurrency. Each gets a
vhost and a database of its own, runs one warm-up job first, then gets
``count`` jobs submitted at once and is timed from the first submit until
a poll sees the last one succeeded.

- Atlas: an isolated suite (``atlas up``); clients submit ``atlas.noop``
  jobs through the data service's ``submit_jobs`` RPC and poll ``job_counts``.
- Celery: ``celery worker --pool prefork`` in a subprocess with
  ``task_acks_late`` and the SQLAlchemy result backend on PostgreSQL; the
  client calls ``apply_async`` for each task and counts the stored results.
  Its workers stay up across rounds. Each round starts from an empty
  result table, as each Atlas round starts a new suite.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from services.cli.database import create_database
from tests.conftest import POSTGRES_URL, create_test_vhost, delete_test_vhost, drop_test_database
from tests.suite_process import ROOT, running_suite

from . import celery_peer
from .pairs import Row

# Seconds between polls for the count of finished jobs; it bounds the error of each timing.
POLL_INTERVAL = 0.05
# Seconds a run may take before the benchmark gives up on it.
RUN_TIMEOUT = 600.0
# Jobs per submit_jobs call; the Celery client publishes one message per call.
SUBMIT_BATCH = 100


@dataclass
class JobsRun:
    jobs: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.jobs / self.seconds


def jobs_pair(workdir: Path, count: int, concurrency: int, rounds: int = 1) -> Row:
    """Run ``count`` no-op jobs on Atlas and on Celery with ``concurrency`` workers each.

    Each of ``rounds`` rounds runs Atlas and then Celery. Both sides vary
    by a tenth to a third from one run to the next on a small machine, so
    the row gives the medians: of each side's rate and of the rounds' ratios.
    """
    with celery_running(workdir, concurrency) as run_celery:
        runs = [
            (run_atlas(workdir / f"round-{n}", count, concurrency), run_celery(count))
            for n in range(rounds)
        ]
    atlas_rate = statistics.median(atlas.per_second for atlas, _ in runs)
    celery_rate = statistics.median(celery.per_second for _, celery in runs)
    ratio = statistics.median(atlas.per_second / celery.per_second for atlas, celery in runs)
    notes = [
        f"Atlas clients submit through submit_jobs, {SUBMIT_BATCH} jobs a call, and "
        "Celery's client calls apply_async once a task; each side polls its count of "
        f"successes every {POLL_INTERVAL * 1000:.0f} ms"
    ]
    if rounds > 1:
        rounds_text = "; ".join(
            f"{atlas.per_second:,.0f} vs {celery.per_second:,.0f} jobs/s "
            f"({atlas.per_second / celery.per_second:.2f} ×)"
            for atlas, celery in runs
        )
        notes.append(f"medians of {rounds} rounds, Atlas then Celery in each: {rounds_text}")
    return Row(
        what=f"end-to-end no-op jobs, submit → succeeded ({count:,} jobs, "
        f"{concurrency} at a time; jobs/s)",
        atlas=f"{atlas_rate:,.0f} jobs/s",
        peer=f"Celery {metadata.version('celery')}, acks_late, PostgreSQL results, "
        f"prefork: {celery_rate:,.0f} jobs/s",
        ratio=f"{ratio:.2f} × Celery jobs/s",
        target="≥ 2.0 × Celery",
        met=ratio >= 2.0,
        notes=notes,
    )


def _wait_until(done: Callable[[], bool], started: float, what: str) -> float:
    """Poll ``done`` until it is true; return the seconds since ``started``."""
    while not done():
        if time.monotonic() - started > RUN_TIMEOUT:
            raise RuntimeError(f"{what} did not finish within {RUN_TIMEOUT:.0f} s")
        time.sleep(POLL_INTERVAL)
    return time.monotonic() - started


# Atlas


def run_atlas(workdir: Path, count: int, concurrency: int) -> JobsRun:
    from nameko.standalone.rpc import ClusterRpcProxy

    env = {"ATLAS_JOB_POOL_SIZE": str(concurrency)}
    with running_suite(workdir / "jobs", env) as suite:
        config = {"AMQP_URI": suite.amqp_uri, "serializer": "json"}
        with ClusterRpcProxy(config, timeout=60) as cluster:
            data = cluster.data
            data.submit_jobs("atlas.noop", [{"warm-up": True}])
            _wait_until(lambda: data.job_counts()["succeeded"] == 1, time.monotonic(), "warm-up")

            payloads = [{"n": n} for n in range(count)]
            started = time.monotonic()
            for first in range(0, count, SUBMIT_BATCH):
                data.submit_jobs("atlas.noop", payloads[first : first + SUBMIT_BATCH])
            seconds = _wait_until(
                lambda: data.job_counts()["succeeded"] == count + 1, started, "Atlas jobs"
            )
    return JobsRun(count, seconds)


# Celery


@contextmanager
def celery_broker_and_backend() -> Iterator[tuple[str, str]]:
    """Yield a broker URL and a result backend URL on a new vhost and database."""
    name = f"atlas_bench_celery_{uuid.uuid4().hex[:10]}"
    broker = create_test_vhost(name)
    database_url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    create_database(database_url)
    try:
        yield broker, f"db+{database_url}"
    finally:
        drop_test_database(name)
        delete_test_vhost(name)


@contextmanager
def celery_running(workdir: Path, concurrency: int) -> Iterator[Callable[[int], JobsRun]]:
    """Start Celery's workers and yield a function that runs a round of ``count`` tasks.

    The workers, broker vhost and result database serve every round, and
    each round starts from an empty result table.
    """
    with celery_broker_and_backend() as (broker, backend):
        app = celery_peer.app
        app.conf.broker_url = broker
        app.conf.result_backend = backend
        # Creates the result table here, before several workers would race to.
        app.backend.ResultSession().close()
        engine = create_engine(backend.removeprefix("db+"))

        def run_round(count: int) -> JobsRun:
            with engine.begin() as connection:
                connection.execute(text("TRUNCATE celery_taskmeta"))
            started = time.monotonic()
            for n in range(count):
                celery_peer.noop.apply_async(({"n": n},))
            seconds = _wait_until(
                lambda: _succeeded_tasks(engine) == count, started, "Celery tasks"
            )
            return JobsRun(count, seconds)

        try:
            with _celery_workers(broker, backend, concurrency, workdir / "celery.log"):
                celery_peer.noop.apply_async(({"warm-up": True},)).get(timeout=120)
                yield run_round
        finally:
            engine.dispose()
            app.pool.force_close_all()


def _succeeded_tasks(engine: Any) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM celery_taskmeta WHERE status = 'SUCCESS'")
            ).scalar_one()
        )


@contextmanager
def _celery_workers(broker: str, backend: str, concurrency: int, log_path: Path) -> Iterator[None]:
    """Run Celery's prefork workers in a subprocess that logs to ``log_path``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        celery_peer.BROKER_VARIABLE: broker,
        celery_peer.BACKEND_VARIABLE: backend,
    }
    with open(log_path, "wb") as log:
        process = _start_celery(env, concurrency, log)
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start_celery(env: dict[str, str], concurrency: int, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.celery_peer",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
