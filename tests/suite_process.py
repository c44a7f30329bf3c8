"""Start the whole suite with ``atlas up`` in a subprocess, isolated from other runs.

The suite gets its own database, vhost, ports, storage root and state
directory; stopping it removes the database and the vhost. The end-to-end
tests and the benchmarks both use it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from tests.conftest import create_test_vhost, delete_test_vhost, drop_test_database, free_port

ROOT = Path(__file__).resolve().parents[1]
ATLAS = [sys.executable, "-m", "services.cli.main"]
START_TIMEOUT = 90  # seconds


class SuiteFailed(RuntimeError):
    """The suite exited or did not become healthy; the message contains its log's tail."""


@dataclass
class RunningSuite:
    api_url: str
    binstore_url: str
    #: The suite's database and vhost, reached directly even when the suite
    #: itself goes through a proxy.
    database_url: str
    amqp_uri: str
    env: dict[str, str]
    log_path: Path
    #: Process id of ``atlas up``, the supervisor of the service processes.
    pid: int

    def atlas(self, *args: str) -> str:
        result = subprocess.run(
            [*ATLAS, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise AssertionError(f"atlas {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def create_user(self, username: str, password: str | None = None) -> str:
        """Create a user with ``atlas users create`` and return the token it prints."""
        args = ["users", "create", username]
        if password:
            args += ["--password", password]
        output = self.atlas(*args)
        match = re.search(r"token \(shown once, store it now\): (\S+)", output)
        if match is None:
            raise AssertionError(f"no token in the output of atlas users create:\n{output}")
        return match.group(1)


@contextmanager
def running_suite(
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    database_via: str | None = None,
    amqp_via: str | None = None,
) -> Iterator[RunningSuite]:
    """Start the suite; ``database_via`` and ``amqp_via`` are ``HOST:PORT`` of proxies
    that the suite reaches PostgreSQL and RabbitMQ through instead of their own ports."""
    name = f"atlas_suite_{uuid.uuid4().hex[:10]}"
    gateway_port, binstore_port = free_port(), free_port()
    database_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    amqp_uri = create_test_vhost(name)
    env = {
        **os.environ,
        "ATLAS_DATABASE_URL": _reroute(database_url, database_via),
        "ATLAS_AMQP_URI": _reroute(amqp_uri, amqp_via),
        "ATLAS_GATEWAY_ADDRESS": f"127.0.0.1:{gateway_port}",
        "ATLAS_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
        "ATLAS_BINSTORE_ADDRESS": f"127.0.0.1:{binstore_port}",
        "ATLAS_BINSTORE_URL": f"http://127.0.0.1:{binstore_port}",
        "ATLAS_STORAGE_ROOT": str(workdir / "blobs"),
        "ATLAS_STATE_DIR": str(workdir / "state"),
        "PYTHONPATH": str(ROOT),
        **(extra_env or {}),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "atlas.log"
    with open(log_path, "wb") as log:
        # A process group of its own lets the cleanup reach every service
        # process, even one that outlived its supervisor.
        process = subprocess.Popen(
            [*ATLAS, "up"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    suite = RunningSuite(
        api_url=f"http://127.0.0.1:{gateway_port}",
        binstore_url=f"http://127.0.0.1:{binstore_port}",
        database_url=database_url,
        amqp_uri=amqp_uri,
        env=env,
        log_path=log_path,
        pid=process.pid,
    )
    try:
        _wait_for_health(suite, process)
        yield suite
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
        # A service that cannot reach the broker never finishes stopping.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        drop_test_database(name)
        delete_test_vhost(name)


def _reroute(url: str, address: str | None) -> str:
    """Return ``url`` with its host and port replaced by ``address``, credentials kept."""
    if address is None:
        return url
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{address}" if credentials else address))


def _wait_for_health(suite: RunningSuite, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SuiteFailed(f"atlas up exited early:\n{suite.log_path.read_text()[-4000:]}")
        try:
            if requests.get(suite.api_url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SuiteFailed(f"the suite did not become healthy:\n{suite.log_path.read_text()[-4000:]}")
