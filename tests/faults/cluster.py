"""A private Atlas job cluster for fault tests: its own database, broker vhost or node, workers.

The data service and the dispatcher run in the test process, so the
test-only job kind's outcome (an insert into ``test_job_effects``) is
registered with them. Workers run as separate processes, so that a test
can kill one with SIGKILL.
"""

from __future__ import annotations

import os
import secrets
import shutil
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

import eventlet
import yaml
from nameko.containers import ServiceContainer
from sqlalchemy import create_engine, text

from services.toolkit import config as cfg
from tests.conftest import free_port
from tests.jobkinds import RECORD

ROOT = Path(__file__).resolve().parents[2]
WORKER_POOL = 8
SUBMIT_BATCH = 20
FAULT_JOBS = {
    cfg.JOB_LEASE: 3,
    cfg.JOB_SWEEP_INTERVAL: 0.5,
    cfg.JOB_BACKOFF_BASE: 0.2,
    cfg.JOB_BACKOFF_MAX: 1,
    cfg.JOB_MAX_ATTEMPTS: 10,
    cfg.JOB_WORKER_KINDS: [RECORD],
    cfg.JOB_KINDS: {RECORD: {cfg.JOB_POOL_SIZE: WORKER_POOL}},
}


def cluster_config(database_url: str, amqp_uri: str) -> dict[str, Any]:
    return {
        "AMQP_URI": amqp_uri,
        "DB_URIS": {cfg.DATA_DB_KEY: database_url},
        "serializer": "json",
        "max_workers": 24,
        cfg.ATLAS: {
            cfg.SECRET_KEY: secrets.token_urlsafe(32),
            cfg.RPC_TIMEOUT: 5,
            cfg.JOBS: FAULT_JOBS,
        },
    }


@dataclass
class Cluster:
    config: dict[str, Any]
    workdir: Path
    containers: list[Any] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = create_engine(
            self.config["DB_URIS"][cfg.DATA_DB_KEY], pool_size=2, pool_pre_ping=True
        )
        self.runs_file = self.workdir / "runs"
        self.config_file = self.workdir / "worker.yaml"
        worker_config = {
            **self.config,
            "LOGGING": {
                "version": 1,
                "handlers": {"console": {"class": "logging.StreamHandler"}},
                "root": {"level": "WARNING", "handlers": ["console"]},
            },
        }
        self.config_file.write_text(yaml.safe_dump(worker_config))

    def start_services(self) -> None:
        import tests.jobkinds  # noqa: F401 - registers the test kind's outcome with data
        from services.data.service import DataService
        from services.jobs.service import JobsService

        for service_cls in (DataService, JobsService):
            container = ServiceContainer(service_cls, self.config)
            container.start()
            self.containers.append(container)

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.faults.worker_process",
                "workers",
                "--config",
                str(self.config_file),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.workers.append(process)
        return process

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for container in reversed(self.containers):
            container.stop()
        self.engine.dispose()

    def rpc(self) -> Any:
        from nameko.standalone.rpc import ClusterRpcProxy

        return ClusterRpcProxy(self.config, timeout=30)

    def submit(self, count: int, payload: dict[str, Any]) -> list[int]:
        proxy = self.rpc()
        data = proxy.start().data
        try:
            payload = {**payload, "runs_file": str(self.runs_file)}
            # The standalone proxy serves one caller at a time, so the calls are
            # pipelined, in batches that leave the data service room for the others.
            jobs = []
            for start in range(0, count, SUBMIT_BATCH):
                size = min(SUBMIT_BATCH, count - start)
                replies = [data.submit_job.call_async(RECORD, payload) for _ in range(size)]
                jobs.extend(reply.result() for reply in replies)
        finally:
            proxy.stop()
        return [job["id"] for job in jobs]

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def states(self) -> dict[str, int]:
        rows = self.query("SELECT state, count(*) FROM jobs GROUP BY state")
        return {str(state): int(count) for state, count in rows}

    def wait_until(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            eventlet.sleep(0.2)
        return False

    def all_terminal(self, total: int) -> bool:
        states = self.states()
        finished = sum(states.get(s, 0) for s in ("succeeded", "failed", "cancelled"))
        return finished == total

    def runs_per_job(self) -> dict[int, int]:
        runs: dict[int, int] = {}
        if self.runs_file.exists():
            for line in self.runs_file.read_text().splitlines():
                job_id = int(line.split()[0])
                runs[job_id] = runs.get(job_id, 0) + 1
        return runs

    def check_nothing_lost_or_doubled(self, job_ids: list[int]) -> dict[str, Any]:
        """Return the facts the fault tests assert, gathered in one place."""
        effects = dict(self.query("SELECT job_id, count(*) FROM test_job_effects GROUP BY job_id"))
        expiries = dict(
            self.query(
                "SELECT job_id, count(*) FROM job_transitions WHERE trigger = 'expire' "
                "GROUP BY job_id"
            )
        )
        runs = self.runs_per_job()
        return {
            "states": self.states(),
            "jobs_with_effect": len(effects),
            "effects_applied_twice": sorted(j for j, n in effects.items() if n != 1),
            "missing_effects": sorted(set(job_ids) - set(effects)),
            # A handler runs again only after its worker lost the job's lease.
            "rerun_without_expiry": sorted(
                j for j, n in runs.items() if n > 1 + expiries.get(j, 0)
            ),
            "expired_jobs": len(expiries),
        }


@contextmanager
def private_database(admin_url: str) -> Iterator[str]:
    from tests.conftest import add_effects_table, create_test_database, drop_test_database

    name = f"atlas_fault_{uuid.uuid4().hex[:8]}"
    url = create_test_database(name)
    add_effects_table(url)
    try:
        yield url
    finally:
        drop_test_database(name)


class RabbitNode:
    """A RabbitMQ node of its own, on its own ports and data directory, that a test may restart."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.name = f"atlas_fault_{uuid.uuid4().hex[:6]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        (workdir / "enabled_plugins").write_text("[].\n")
        (workdir / "rabbitmq.conf").write_text("")
        (workdir / "rabbitmq-env.conf").write_text("")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def amqp_uri(self) -> str:
        return f"pyamqp://guest:guest@127.0.0.1:{self.port}//"

    def _server_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.workdir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.workdir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.workdir / "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": str(self.workdir / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.workdir / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # The CLI gets only what it needs: the server's port variables would
        # make its own Erlang node take the server's ports.
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/root"),
            "RABBITMQ_CONF_ENV_FILE": str(self.workdir / "rabbitmq-env.conf"),
        }
        return subprocess.run(
            [rabbitmqctl(), "-n", self.name, "-q", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> None:
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [rabbitmq_server()],
            env=self._server_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"RabbitMQ node {self.name} exited:\n"
                    + (self.workdir / "server.log").read_text()[-3000:]
                )
            if self._ctl("await_startup", "--timeout", "5").returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"RabbitMQ node {self.name} did not start within 90 seconds")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self._ctl("stop")
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


def rabbitmq_server() -> str:
    return shutil.which("rabbitmq-server", path="/usr/lib/rabbitmq/bin") or "rabbitmq-server"


def rabbitmqctl() -> str:
    return shutil.which("rabbitmqctl", path="/usr/lib/rabbitmq/bin") or "rabbitmqctl"
