"""Processes the benchmark starts and stops: a private Atlas (data and binstore) and nginx.

Everything listens on loopback ports chosen at random and lives in a
working directory of its own. The database and the RabbitMQ vhost are
created for the run and removed after it.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # seconds a service gets to start listening
STOP_TIMEOUT = 20.0  # seconds a service gets to stop before SIGKILL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {START_TIMEOUT:g} seconds")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Nginx:
    """Debian's nginx serving one directory with sendfile, as an instance of its own.

    Debian's configuration sets ``tcp_nopush on``. Over loopback on the
    2-core machine where this benchmark was written, nginx sent 1.9 to 2.8
    GB/s without it and 1.5 to 1.8 GB/s with it, so the peer runs without
    it, as does binstore.
    """

    # Workers run as the benchmark's user, who can read the blob files (mode 0600).
    CONFIG = """\
user {user} {group};
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush off;
    sendfile_max_chunk 0;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    types {{ application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""

    def __init__(self, workdir: Path, root: Path) -> None:
        self.workdir = workdir
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str:
        found = shutil.which("nginx") or (
            "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
        )
        if found is None:
            raise RuntimeError("nginx is not installed; install Debian's nginx package")
        return found

    @classmethod
    def version(cls) -> str:
        result = subprocess.run([cls.binary(), "-v"], capture_output=True, text=True, check=True)
        return result.stderr.strip().removeprefix("nginx version: ")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "nginx.conf"
        config.write_text(
            self.CONFIG.format(
                user=pwd.getpwuid(os.getuid()).pw_name,
                group=grp.getgrgid(os.getgid()).gr_name,
                workdir=self.workdir,
                root=self.root,
                port=self.port,
            )
        )
        self.process = subprocess.Popen(
            [self.binary(), "-p", str(self.workdir), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process, "nginx")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


class PrivateAtlas:
    """The data and binstore services as processes, on a database and vhost of their own."""

    def __init__(self, workdir: Path, postgres_url: str, amqp_url: str, rabbit_api: str) -> None:
        self.workdir = workdir
        self.name = f"atlas_bench_{uuid.uuid4().hex[:10]}"
        self.postgres_url = postgres_url
        self.amqp_url = amqp_url
        self.rabbit_api = rabbit_api
        self.database_url = postgres_url.rsplit("/", 1)[0] + "/" + self.name
        self.secret_key = secrets.token_urlsafe(32)
        self.binstore_port = free_port()
        self.binstore_url = f"http://127.0.0.1:{self.binstore_port}"
        self.storage_root = workdir / "blobs"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.vhost_created = False

    def config(self) -> dict[str, Any]:
        """Return the configuration an RPC client of this suite needs."""
        return {"AMQP_URI": self.amqp_uri, "serializer": "json"}

    @property
    def amqp_uri(self) -> str:
        return self.amqp_url.rstrip("/") + "/" + quote(self.name, safe="")

    def start(self) -> None:
        from services.cli.database import migrate

        migrate(self.database_url)
        self._create_vhost()
        env = {
            **os.environ,
            "ATLAS_DATABASE_URL": self.database_url,
            "ATLAS_AMQP_URI": self.amqp_uri,
            "ATLAS_SECRET_KEY": self.secret_key,
            "ATLAS_STORAGE_ROOT": str(self.storage_root),
            "ATLAS_BINSTORE_ADDRESS": f"127.0.0.1:{self.binstore_port}",
            "ATLAS_BINSTORE_URL": self.binstore_url,
            "ATLAS_WEB_SERVER_ADDRESS": f"127.0.0.1:{self.binstore_port}",
            "ATLAS_MAX_UPLOAD_SIZE": str(1024**4),
            "ATLAS_GC_INTERVAL": "0",
            "ATLAS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        log = open(self.workdir / "services.log", "ab")  # noqa: SIM115 - kept for the processes
        for name in ("data", "binstore"):
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "services.toolkit.runner", name],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.binstore_port, self.processes["binstore"], "binstore")

    @property
    def binstore_pid(self) -> int:
        return self.processes["binstore"].pid

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process)
        if self.vhost_created:
            with contextlib.suppress(requests.RequestException):
                self._rabbit("DELETE", f"/api/vhosts/{quote(self.name, safe='')}")
        engine = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        engine.dispose()

    def _create_vhost(self) -> None:
        vhost = quote(self.name, safe="")
        user = urlparse(self.amqp_url).username or "guest"
        self._rabbit("PUT", f"/api/vhosts/{vhost}")
        self.vhost_created = True
        self._rabbit(
            "PUT",
            f"/api/permissions/{vhost}/{quote(user, safe='')}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        )

    def _rabbit(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        parsed = urlparse(self.rabbit_api)
        response = requests.request(
            method,
            f"{parsed.scheme}://{parsed.hostname}:{parsed.port}{path}",
            auth=(parsed.username or "guest", parsed.password or "guest"),
            timeout=10,
            **kwargs,
        )
        response.raise_for_status()
        return response
