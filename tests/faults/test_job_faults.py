"""After a fault, every job ends terminal: none lost, none whose effect was applied twice.

Each test submits 500 jobs to a private cluster (see ``cluster.py``),
injects one fault for real while they run, then waits for all of them.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from services.toolkit.jobs import queue_name
from tests.conftest import (
    POSTGRES_URL,
    RUN_ID,
    _rabbit_api,
    create_test_vhost,
    delete_test_vhost,
)
from tests.faults.cluster import Cluster, RabbitNode, cluster_config, private_database
from tests.jobkinds import RECORD

JOBS = 500
# Each job sleeps this long, so that faults hit jobs in the middle of their work.
JOB_SECONDS = 0.2
RECOVERY_TIMEOUT = 180  # seconds


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@contextlib.contextmanager
def vhost_cluster(workdir: Path) -> Iterator[Cluster]:
    vhost = f"atlas_fault_{RUN_ID}_{workdir.name[-8:]}"
    amqp_uri = create_test_vhost(vhost)
    with private_database(POSTGRES_URL) as database_url:
        cluster = Cluster(cluster_config(database_url, amqp_uri), workdir)
        try:
            cluster.start_services()
            yield cluster
        finally:
            cluster.stop()
            delete_test_vhost(vhost)


def assert_recovered(cluster: Cluster, job_ids: list[int]) -> dict[str, Any]:
    recovered = cluster.wait_until(lambda: cluster.all_terminal(len(job_ids)), RECOVERY_TIMEOUT)
    facts = cluster.check_nothing_lost_or_doubled(job_ids)

    assert recovered, facts
    assert facts["states"] == {"succeeded": JOBS}
    assert facts["jobs_with_effect"] == JOBS
    assert facts["effects_applied_twice"] == []
    assert facts["missing_effects"] == []
    assert facts["rerun_without_expiry"] == []
    return facts


def test_worker_killed_mid_job(workdir: Path) -> None:
    with vhost_cluster(workdir) as cluster:
        victim = cluster.start_worker()
        cluster.start_worker()
        job_ids = cluster.submit(JOBS, {"sleep": JOB_SECONDS})
        victim_id = f"%:{victim.pid}"
        busy = cluster.wait_until(
            lambda: cluster.query(
                "SELECT 1 FROM jobs WHERE state = 'running' AND worker LIKE :worker",
                worker=victim_id,
            ),
            60,
        )

        victim.send_signal(signal.SIGKILL)
        facts = assert_recovered(cluster, job_ids)

    assert busy
    assert facts["expired_jobs"] >= 1, facts


def test_deleted_queue_is_rebuilt(workdir: Path) -> None:
    with vhost_cluster(workdir) as cluster:
        job_ids = cluster.submit(JOBS, {"sleep": JOB_SECONDS})
        all_queued = cluster.wait_until(lambda: cluster.states() == {"queued": JOBS}, 60)
        vhost = cluster.config["AMQP_URI"].rsplit("/", 1)[1]
        _rabbit_api("DELETE", f"/api/queues/{vhost}/{queue_name(RECORD)}")
        cluster.start_worker()
        cluster.start_worker()

        def consumed_but_empty() -> bool:
            # The workers declare the queue again and consume from it, but it is empty.
            try:
                queue = _rabbit_api("GET", f"/api/queues/{vhost}/{queue_name(RECORD)}").json()
            except requests.HTTPError:
                return False
            return queue.get("consumers", 0) == 2 and queue.get("messages", -1) == 0

        lost = cluster.wait_until(consumed_but_empty, 60)
        still_queued = cluster.states() == {"queued": JOBS}

        proxy = cluster.rpc()
        try:
            republished = proxy.start().jobs.rebuild()
        finally:
            proxy.stop()
        assert_recovered(cluster, job_ids)

    assert all_queued
    assert lost
    assert still_queued
    assert republished == {RECORD: JOBS}


def test_broker_restart(workdir: Path) -> None:
    (workdir / "rabbit").mkdir()
    node = RabbitNode(workdir / "rabbit")
    node.start()
    try:
        with private_database(POSTGRES_URL) as database_url:
            cluster = Cluster(cluster_config(database_url, node.amqp_uri), workdir)
            try:
                cluster.start_services()
                cluster.start_worker()
                cluster.start_worker()
                job_ids = cluster.submit(JOBS, {"sleep": JOB_SECONDS})
                started = cluster.wait_until(lambda: cluster.states().get("succeeded", 0) >= 50, 60)

                node.restart()
                try:
                    assert_recovered(cluster, job_ids)
                except AssertionError:
                    print(node._ctl("list_queues", "name", "messages", "consumers").stdout)
                    raise
            finally:
                cluster.stop()
    finally:
        node.stop()

    assert started


def test_database_connections_cut(workdir: Path) -> None:
    with vhost_cluster(workdir) as cluster:
        cluster.start_worker()
        cluster.start_worker()
        job_ids = cluster.submit(JOBS, {"sleep": JOB_SECONDS})
        database = cluster.config["DB_URIS"]["data:Base"].rsplit("/", 1)[1]
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        cut = 0
        try:
            for threshold in (50, 150, 300):
                cluster.wait_until(
                    lambda t=threshold: cluster.states().get("succeeded", 0) >= t, 60
                )
                with admin.connect() as connection:
                    cut += len(
                        list(
                            connection.execute(
                                text(
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                                ),
                                {"name": database},
                            )
                        )
                    )
        finally:
            admin.dispose()
        assert_recovered(cluster, job_ids)

    assert cut >= 3


def test_quorum_queue_is_declared_when_configured(workdir: Path) -> None:
    vhost = f"atlas_quorum_{RUN_ID}"
    amqp_uri = create_test_vhost(vhost)
    try:
        with private_database(POSTGRES_URL) as database_url:
            config = cluster_config(database_url, amqp_uri)
            config["ATLAS"]["jobs"] = {**config["ATLAS"]["jobs"], "quorum_queues": True}
            cluster = Cluster(config, workdir)
            try:
                cluster.start_services()
                cluster.start_worker()
                job_ids = cluster.submit(5, {})
                done = cluster.wait_until(lambda: cluster.all_terminal(5), 60)
                queue = _rabbit_api("GET", f"/api/queues/{vhost}/{queue_name(RECORD)}").json()
            finally:
                cluster.stop()
    finally:
        delete_test_vhost(vhost)

    assert done
    assert len(job_ids) == 5
    assert queue["type"] == "quorum"
