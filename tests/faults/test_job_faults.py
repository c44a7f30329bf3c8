"""Jobs survive faults: a killed worker, a deleted queue, dropped database connections
and a data service that starts after the dispatcher.

Each test submits 500 ``test.effect`` jobs to data, jobs and worker
processes of its own (own database and vhost), injects a fault while they
run, and then checks that every job succeeded, none is missing, and each
job's effect was applied exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import eventlet
import kombu
import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, text

from services.toolkit.errors import ServiceUnavailable
from services.toolkit.jobs import JobQueues, job_queue
from tests.conftest import (
    _rabbit_api,
    create_test_database,
    create_test_vhost,
    delete_test_vhost,
    drop_test_database,
)
from tests.job_kinds import CREATE_TABLES
from tests.operations import wait_for

ROOT = Path(__file__).resolve().parents[2]
JOBS = 500
KIND = "test.effect"
# Seconds each job's effect takes, so that faults land while jobs run.
EFFECT_SECONDS = 0.05
FINISH_TIMEOUT = 240.0  # seconds for all jobs to end after the fault


@dataclass
class Cluster:
    """Data, the dispatcher and worker processes on a database and vhost of their own."""

    workdir: Path
    env: dict[str, str]
    database_url: str
    amqp_uri: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *services: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the process keeps it
        process = subprocess.Popen(
            [sys.executable, "-m", "services.toolkit.runner", *services],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    @contextmanager
    def rpc(self) -> Iterator[Any]:
        proxy = ClusterRpcProxy({"AMQP_URI": self.amqp_uri, "serializer": "json"}, timeout=30)
        try:
            yield proxy.start()
        finally:
            proxy.stop()

    def query(self, sql: str, **values: Any) -> list[Any]:
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as connection:
                result = connection.execute(text(sql), values)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def submit(self, count: int, seconds: float = EFFECT_SECONDS) -> list[int]:
        with self.rpc() as cluster:
            return [
                int(cluster.data.submit_job(KIND, {"seconds": seconds})["id"]) for _ in range(count)
            ]

    def counts(self) -> dict[str, int]:
        with self.rpc() as cluster:
            return dict(cluster.data.job_counts())

    def queued_messages(self) -> int:
        """Return the number of messages waiting in the queue of KIND."""
        with kombu.Connection(self.amqp_uri) as connection:
            declared = job_queue(KIND)(connection.default_channel).queue_declare(passive=True)
            return int(declared.message_count)

    def effects(self) -> int:
        return int(self.query("SELECT count(*) FROM test_effects")[0][0])

    def wait_until_all_finished(self, job_ids: list[int]) -> dict[str, int]:
        def finished() -> dict[str, int] | None:
            try:
                counts = self.counts()
            except ServiceUnavailable:
                # A pooled connection that a fault just closed fails one
                # query with 503, as any client may see; the next poll retries.
                return None
            done = counts["succeeded"] + counts["failed"] + counts["cancelled"]
            return counts if done == len(job_ids) else None

        counts = wait_for(finished, timeout=FINISH_TIMEOUT, step=1.0)
        assert counts, f"jobs did not all finish: {self.counts()}"
        return counts

    def assert_each_effect_applied_once(self, job_ids: list[int]) -> None:
        rows = self.query("SELECT job_id, count(*) FROM test_effects GROUP BY job_id")
        applied = {job_id: count for job_id, count in rows}
        assert set(applied) == set(job_ids)
        assert [job_id for job_id, count in applied.items() if count != 1] == []


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    name = f"atlas_fault_{uuid.uuid4().hex[:8]}"
    database_url = create_test_database(name)
    amqp_uri = create_test_vhost(name)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ATLAS_DATABASE_URL": database_url,
        "ATLAS_AMQP_URI": amqp_uri,
        "ATLAS_SECRET_KEY": uuid.uuid4().hex,
        "ATLAS_JOB_LEASE": "3",
        "ATLAS_JOB_BACKOFF_BASE": "0.2",
        "ATLAS_JOB_BACKOFF_MAX": "1",
        "ATLAS_JOB_SCAN_INTERVAL": "0.5",
        "ATLAS_JOB_MAX_ATTEMPTS": "10",
        "ATLAS_JOB_POOL_SIZE": "16",
        "ATLAS_LOG_LEVEL": "WARNING",
    }
    running = Cluster(tmp_path, env, database_url, amqp_uri)
    for statement in CREATE_TABLES:
        running.query(statement)
    running.start("data", "data")
    running.start("jobs", "jobs")
    try:
        assert wait_for(lambda: _answers(running), timeout=60), "data did not start"
        yield running
    finally:
        running.stop_all()
        delete_test_vhost(name)
        drop_test_database(name)


def _answers(cluster: Cluster) -> bool:
    try:
        with cluster.rpc() as rpc:
            rpc.data.ping()
            rpc.jobs.instance_health()
        return True
    except Exception:
        return False


WORKERS = "tests.job_kinds:TestWorkers"


def test_killed_worker_loses_no_job(cluster: Cluster) -> None:
    job_ids = cluster.submit(JOBS)
    cluster.start("worker-a", WORKERS)
    assert wait_for(lambda: cluster.effects() >= JOBS // 5, timeout=120, step=0.2)

    cluster.kill("worker-a")
    cluster.start("worker-b", WORKERS)

    counts = cluster.wait_until_all_finished(job_ids)
    assert counts["succeeded"] == JOBS
    cluster.assert_each_effect_applied_once(job_ids)
    # The attempts the kill interrupted ran again after their lease expired.
    [[restarted]] = cluster.query("SELECT count(*) FROM jobs WHERE attempt > 1")
    assert restarted > 0


def test_deleted_queue_is_rebuilt(cluster: Cluster) -> None:
    job_ids = cluster.submit(JOBS)
    assert wait_for(lambda: cluster.counts()["queued"] == JOBS, timeout=120, step=0.5)

    JobQueues(cluster.amqp_uri).delete_queue(KIND)
    with cluster.rpc() as rpc:
        assert rpc.jobs.rebuild() == JOBS
    cluster.start("worker", WORKERS)

    counts = cluster.wait_until_all_finished(job_ids)
    assert counts["succeeded"] == JOBS
    cluster.assert_each_effect_applied_once(job_ids)


def test_late_data_no_duplicate_messages(cluster: Cluster) -> None:
    """A dispatcher that started before data rebuilds before its first job, not after."""
    scan_interval = 15.0
    cluster.kill("jobs")
    cluster.kill("data")
    # Without data's queue, a call to data fails at once, as on a new vhost.
    with kombu.Connection(cluster.amqp_uri) as connection:
        connection.default_channel.queue_delete("rpc-data")
    cluster.env["ATLAS_JOB_SCAN_INTERVAL"] = str(scan_interval)
    # Its first scan, at start, cannot reach data, so its rebuild is still to come.
    started = time.monotonic()
    cluster.start("jobs", "jobs")
    eventlet.sleep(3.0)
    cluster.start("data", "data")
    assert wait_for(lambda: _answers(cluster), timeout=60), "data did not start"

    job_ids = cluster.submit(20)
    assert wait_for(lambda: cluster.counts()["queued"] == len(job_ids), timeout=30, step=0.2)
    # The jobs were queued before the dispatcher's second scan was due, or
    # the test could not tell a late rebuild from an early one.
    assert time.monotonic() - started < scan_interval
    # Let the dispatcher's next scan run.
    eventlet.sleep(scan_interval + 1.0)

    assert cluster.queued_messages() == len(job_ids)


def test_dropped_database_connections_lose_no_job(cluster: Cluster) -> None:
    job_ids = cluster.submit(JOBS)
    cluster.start("worker", WORKERS)
    database = cluster.database_url.rsplit("/", 1)[1]

    # Drop every connection to the database, as a PostgreSQL restart does, three times.
    for _ in range(3):
        eventlet.sleep(1.0)
        cluster.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()",
            name=database,
        )

    counts = cluster.wait_until_all_finished(job_ids)
    assert counts["succeeded"] == JOBS
    cluster.assert_each_effect_applied_once(job_ids)


def test_sigterm_lets_running_jobs_finish(cluster: Cluster) -> None:
    with cluster.rpc() as rpc:
        job_ids = [int(rpc.data.submit_job(KIND, {"seconds": 2.0})["id"]) for _ in range(40)]
    worker = cluster.start("worker-a", WORKERS)
    assert wait_for(lambda: cluster.counts()["running"] > 0, timeout=60, step=0.2)
    running = [
        job_id
        for [job_id] in cluster.query("SELECT id FROM jobs WHERE state = 'running' ORDER BY id")
    ]

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    del cluster.processes["worker-a"]

    # The attempts in progress finished before the worker exited, without a retry.
    finished = cluster.query(
        "SELECT id, state, attempt FROM jobs WHERE id = ANY(:ids)", ids=running
    )
    assert {(state, attempt) for _, state, attempt in finished} == {("succeeded", 1)}
    cluster.start("worker-b", WORKERS)
    counts = cluster.wait_until_all_finished(job_ids)
    assert counts["succeeded"] == len(job_ids)
    cluster.assert_each_effect_applied_once(job_ids)


def close_broker_connections(vhost: str) -> int:
    """Close every client connection to ``vhost``, as a broker restart does; return how many."""
    connections = _rabbit_api("GET", f"/api/vhosts/{quote(vhost, safe='')}/connections").json()
    for connection in connections:
        _rabbit_api(
            "DELETE",
            f"/api/connections/{quote(connection['name'], safe='')}",
            headers={"X-Reason": "fault test: broker connections dropped"},
        )
    return len(connections)


def test_dropped_broker_connections_lose_no_job(cluster: Cluster) -> None:
    # Longer jobs, so that all three faults land while jobs still run.
    job_ids = cluster.submit(JOBS, seconds=0.2)
    cluster.start("worker", WORKERS)
    vhost = unquote(cluster.amqp_uri.rsplit("/", 1)[1])

    # Every service loses its connections three times while the jobs run. The
    # management API lists a new connection only after its next statistics
    # round, a few seconds after it opened.
    assert wait_for(lambda: cluster.effects() > 0, timeout=60, step=0.2)
    for round in range(3):
        assert wait_for(lambda: close_broker_connections(vhost), timeout=60, step=1.0)
        if round == 0:
            assert cluster.counts()["succeeded"] < JOBS, "the jobs finished before the fault"
        eventlet.sleep(2.0)

    counts = cluster.wait_until_all_finished(job_ids)
    assert counts["succeeded"] == JOBS
    cluster.assert_each_effect_applied_once(job_ids)
