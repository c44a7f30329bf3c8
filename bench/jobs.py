"""End-to-end jobs, submit to succeeded: Atlas beside Celery on the same RabbitMQ.

Both sides run no-op jobs at each of several worker concurrencies, the
same ones for both, and the row compares each side at its best of them:
a user runs each at the concurrency that suits it on the machine, and
the two peak at different ones. Each side gets a vhost and a database of
its own (Atlas a new suite at each concurrency), and its workers at each
concurrency run one warm-up job first. Then, in each round, it gets
``count`` jobs submitted at once and is timed from the first submit until
a poll finds the last one succeeded. The workers stay up across the
rounds, so no round measures a start.

- Atlas: an isolated suite (``atlas up``); clients submit ``atlas.noop``
  jobs through the data service's ``submit_jobs`` RPC and poll ``job_counts``
  until the round's jobs add to the count of succeeded jobs. The jobs of
  earlier rounds stay in the database.
- Celery: ``celery worker --pool prefork`` in a subprocess with
  ``task_acks_late`` and the SQLAlchemy result backend on PostgreSQL; the
  client calls ``apply_async`` for each task and counts the stored results.
  Each round starts from an empty result table.
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


@dataclass
class Level:
    """The median rates of both sides at one worker concurrency."""

    concurrency: int
    atlas: float
    celery: float


def jobs_pair(workdir: Path, count: int, concurrencies: list[int], rounds: int = 1) -> Row:
    """Run ``count`` no-op jobs on Atlas and on Celery at each worker concurrency.

    At each concurrency, each of ``rounds`` rounds runs Atlas and then
    Celery. Both sides vary by a tenth to a third from one run to the next
    on a small machine, so each concurrency gives the median rate of each
    side. The row compares the best median of Atlas with the best of Celery.
    Taking the best of several medians raises both sides' figures alike,
    and the ratio is no longer one of paired rounds.
    """
    levels = []
    with celery_peer_ready() as peer:
        for concurrency in concurrencies:
            level_dir = workdir / f"concurrency-{concurrency}"
            level_dir.mkdir(parents=True)
            with (
                atlas_running(level_dir, concurrency) as run_atlas,
                celery_running(peer, level_dir, concurrency) as run_celery,
            ):
                runs = [(run_atlas(count), run_celery(count)) for _ in range(rounds)]
            levels.append(
                Level(
                    concurrency,
                    atlas=statistics.median(atlas.per_second for atlas, _ in runs),
                    celery=statistics.median(celery.per_second for _, celery in runs),
                )
            )
    best_atlas = max(levels, key=lambda level: level.atlas)
    best_celery = max(levels, key=lambda level: level.celery)
    ratio = best_atlas.atlas / best_celery.celery
    per_level = "; ".join(
        f"{level.concurrency}: {level.atlas:,.0f} vs {level.celery:,.0f} jobs/s "
        f"({level.atlas / level.celery:.2f} ×)"
        for level in levels
    )
    notes = [
        f"Atlas clients submit through submit_jobs, {SUBMIT_BATCH} jobs a call, and "
        "Celery's client calls apply_async once a task; each side polls its count of "
        f"successes every {POLL_INTERVAL * 1000:.0f} ms",
        f"medians of {rounds} round{'s' if rounds > 1 else ''} at each worker concurrency "
        f"(Atlas places in one workers process, Celery prefork processes), Atlas vs "
        f"Celery: {per_level}",
    ]
    return Row(
        what=f"end-to-end no-op jobs, submit → succeeded ({count:,} jobs; jobs/s at each "
        "side's best worker concurrency)",
        atlas=f"{best_atlas.atlas:,.0f} jobs/s at {best_atlas.concurrency}",
        peer=f"Celery {metadata.version('celery')}, acks_late, PostgreSQL results, "
        f"prefork: {best_celery.celery:,.0f} jobs/s at {best_celery.concurrency}",
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


@contextmanager
def atlas_running(workdir: Path, concurrency: int) -> Iterator[Callable[[int], JobsRun]]:
    """Start an Atlas suite and yield a function that runs a round of ``count`` jobs."""
    from nameko.standalone.rpc import ClusterRpcProxy

    env = {"ATLAS_JOB_POOL_SIZE": str(concurrency)}
    with running_suite(workdir / "jobs", env) as suite:
        config = {"AMQP_URI": suite.amqp_uri, "serializer": "json"}
        with ClusterRpcProxy(config, timeout=60) as cluster:
            data = cluster.data
            data.submit_jobs("atlas.noop", [{"warm-up": True}])
            _wait_until(lambda: data.job_counts()["succeeded"] == 1, time.monotonic(), "warm-up")

            def run_round(count: int) -> JobsRun:
                done = data.job_counts()["succeeded"] + count
                payloads = [{"n": n} for n in range(count)]
                started = time.monotonic()
                for first in range(0, count, SUBMIT_BATCH):
                    data.submit_jobs("atlas.noop", payloads[first : first + SUBMIT_BATCH])
                seconds = _wait_until(
                    lambda: data.job_counts()["succeeded"] == done, started, "Atlas jobs"
                )
                return JobsRun(count, seconds)

            yield run_round


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


@dataclass
class CeleryPeer:
    """Celery's broker vhost and result database, which serve every concurrency and round."""

    broker: str
    backend: str
    engine: Any


@contextmanager
def celery_peer_ready() -> Iterator[CeleryPeer]:
    """Point Celery's client at a new vhost and result database, with the result table made."""
    with celery_broker_and_backend() as (broker, backend):
        app = celery_peer.app
        app.conf.broker_url = broker
        app.conf.result_backend = backend
        # Creates the result table here, before several workers would race to.
        app.backend.ResultSession().close()
        engine = create_engine(backend.removeprefix("db+"))
        try:
            yield CeleryPeer(broker, backend, engine)
        finally:
            engine.dispose()
            app.pool.force_close_all()


@contextmanager
def celery_running(
    peer: CeleryPeer, workdir: Path, concurrency: int
) -> Iterator[Callable[[int], JobsRun]]:
    """Start Celery's workers and yield a function that runs a round of ``count`` tasks.

    Each round starts from an empty result table.
    """

    def run_round(count: int) -> JobsRun:
        with peer.engine.begin() as connection:
            connection.execute(text("TRUNCATE celery_taskmeta"))
        started = time.monotonic()
        for n in range(count):
            celery_peer.noop.apply_async(({"n": n},))
        seconds = _wait_until(
            lambda: _succeeded_tasks(peer.engine) == count, started, "Celery tasks"
        )
        return JobsRun(count, seconds)

    with _celery_workers(peer.broker, peer.backend, concurrency, workdir / "celery.log"):
        celery_peer.noop.apply_async(({"warm-up": True},)).get(timeout=120)
        yield run_round


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
