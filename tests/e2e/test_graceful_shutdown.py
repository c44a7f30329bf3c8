"""SIGTERM drains a service process: requests under way finish or are cut off cleanly.

Each test starts one more service process of its own beside a suite that
``atlas up`` runs, so that it can signal that process and read
its exit status. Requests are written on raw sockets, which lets a test
send half a body, signal the process, and send the rest.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text

from services.toolkit.operations import HttpServiceOperations
from services.toolkit.runner import SERVICES, import_service
from tests.boxes import build_box, sha256
from tests.conftest import Client, free_port, unique
from tests.operations import ConsulAgent, wait_for
from tests.slow_start import STARTING_MESSAGE
from tests.suite_process import ROOT, RunningSuite, SuiteFailed, running_suite

EXIT_TIMEOUT = 90  # seconds a signalled process may take to exit before the test fails
START_TIMEOUT = 60  # seconds a process may take until its /health/instance returns 200


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    try:
        with running_suite(tmp_path_factory.mktemp("suite")) as running:
            yield running
    except SuiteFailed as exc:
        pytest.fail(str(exc))


@dataclass
class ServiceProcess:
    """One service run by ``python -m services.toolkit.runner`` on a port of its own."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_exit(self) -> int:
        try:
            return self.process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            self.process.kill()
            raise AssertionError(f"{self.name} did not exit after SIGTERM:\n{self.log()}") from exc


@pytest.fixture
def start_service(suite: RunningSuite, tmp_path: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []

    def start(name: str, *, wait: bool = True, **env: str) -> ServiceProcess:
        port = free_port()
        process_env = {
            **suite.env,
            "ATLAS_SECRET_KEY": (Path(suite.env["ATLAS_STATE_DIR"]) / "secret_key").read_text(),
            "ATLAS_WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            **env,
        }
        if name == "binstore":
            process_env.setdefault("ATLAS_BINSTORE_URL", f"http://127.0.0.1:{port}")
        if not issubclass(import_service(name), HttpServiceOperations):
            # A service without an HTTP port of its own serves /health/instance here.
            process_env["ATLAS_OPERATIONS_ADDRESS"] = f"127.0.0.1:{port}"
        log_path = tmp_path / f"{name}-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.toolkit.runner", name],
                env=process_env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        service = ServiceProcess(name, port, process, log_path)
        started.append(service)
        if wait and not wait_for(lambda: answers(service), START_TIMEOUT, step=0.2):
            raise AssertionError(f"{name} did not start:\n{service.log()}")
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()


def answers(service: ServiceProcess) -> bool:
    try:
        return requests.get(service.url + "/health/instance", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def unread_bytes(server_port: int, client_port: int) -> int | None:
    """Return the bytes the server has not read yet on one connection, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return int(fields[4].split(":")[1], 16)
    return None


def server_read_everything(connection: socket.socket, server_port: int) -> bool:
    return unread_bytes(server_port, connection.getsockname()[1]) == 0


def send_head(
    port: int, method: str, path: str, headers: dict[str, str], body_start: bytes
) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=EXIT_TIMEOUT)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body_start)
    return connection


def read_response(connection: socket.socket) -> bytes:
    """Read until the server closes the connection, then close it; a reset ends it too."""
    received = b""
    with connection:
        while True:
            try:
                chunk = connection.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


def temporary_uploads(suite: RunningSuite) -> list[Path]:
    return list((Path(suite.env["ATLAS_STORAGE_ROOT"]) / "tmp").glob("upload-*"))


def blob_path(suite: RunningSuite, digest: str) -> Path:
    return Path(suite.env["ATLAS_STORAGE_ROOT"]) / "sha256" / digest[:2] / digest[2:4] / digest


def artifacts_without_blob(suite: RunningSuite) -> list[str]:
    """Return the sha256 of every artifact row whose file is missing from storage."""
    engine = create_engine(suite.database_url)
    try:
        with engine.connect() as connection:
            digests = connection.execute(text("SELECT sha256 FROM artifacts")).scalars().all()
    finally:
        engine.dispose()
    return [digest for digest in digests if not blob_path(suite, digest).is_file()]


@dataclass
class UploadTarget:
    client: Client
    tag: str
    path: str
    content: bytes


def new_upload_target(suite: RunningSuite, size: int = 2 * 1024 * 1024) -> UploadTarget:
    username = unique("publisher")
    client = Client(suite.api_url, username, suite.create_user(username))
    content = build_box("libvirt", disk_bytes=size)
    tag = f"{username}/{unique('box')}"
    name = tag.split("/")[1]
    base = f"/api/v1/box/{tag}"
    provider = {"name": "libvirt", "checksum": sha256(content), "checksum_type": "sha256"}
    steps = [
        client.post("/api/v1/boxes", json={"username": username, "name": name}),
        client.post(f"{base}/versions", json={"version": {"version": "1.0.0"}}),
        client.post(f"{base}/version/1.0.0/providers", json={"provider": provider}),
    ]
    target = client.get(f"{base}/version/1.0.0/provider/libvirt/upload")
    for step in [*steps, target]:
        assert step.status_code == 200, step.text
    return UploadTarget(client, tag, urlsplit(target.json()["upload_path"]).path, content)


def test_binstore_finishes_upload_after_sigterm(suite: RunningSuite, start_service: Any) -> None:
    agent = ConsulAgent()
    try:
        binstore = start_service(
            "binstore",
            ATLAS_CONSUL_URL=agent.url,
            ATLAS_CHECK_INTERVAL="1",
            ATLAS_SHUTDOWN_GRACE_PERIOD="120",
        )
        registered = wait_for(lambda: agent.instances("binstore"))
        target = new_upload_target(suite)
        half = len(target.content) // 2
        headers = {"Content-Length": str(len(target.content))}
        upload = send_head(binstore.port, "PUT", target.path, headers, target.content[:half])
        assert wait_for(lambda: temporary_uploads(suite)), binstore.log()

        binstore.process.send_signal(signal.SIGTERM)
        deregistered = wait_for(lambda: not agent.instances("binstore"))
        refused = wait_for(lambda: refuses_connections(binstore.port))
        upload.sendall(target.content[half:])
        response = read_response(upload)
        exit_code = binstore.wait_for_exit()
    finally:
        agent.stop()

    digest = sha256(target.content)
    assert registered
    assert deregistered, "binstore stayed registered in Consul while it drained"
    assert refused, "binstore accepted new connections after SIGTERM"
    assert response.startswith(b"HTTP/1.1 200"), response
    assert b"connection: close" in response.lower()
    assert exit_code == 0, binstore.log()
    assert blob_path(suite, digest).read_bytes() == target.content
    assert temporary_uploads(suite) == []
    assert artifacts_without_blob(suite) == []
    provider = target.client.get(f"/api/v1/box/{target.tag}/version/1.0.0/provider/libvirt")
    assert provider.json()["hosted"] is True
    assert provider.json()["checksum"] == digest


def test_binstore_cuts_off_upload_past_grace(suite: RunningSuite, start_service: Any) -> None:
    binstore = start_service("binstore", ATLAS_SHUTDOWN_GRACE_PERIOD="1")
    target = new_upload_target(suite)
    half = len(target.content) // 2
    headers = {"Content-Length": str(len(target.content))}
    upload = send_head(binstore.port, "PUT", target.path, headers, target.content[:half])
    assert wait_for(lambda: temporary_uploads(suite)), binstore.log()

    binstore.process.send_signal(signal.SIGTERM)
    exit_code = binstore.wait_for_exit()
    response = read_response(upload)
    temporary_after_exit = temporary_uploads(suite)
    blob_after_exit = blob_path(suite, sha256(target.content)).exists()
    metadata = target.client.get(f"/api/v1/box/{target.tag}/version/1.0.0/provider/libvirt")
    retried = requests.put(suite.binstore_url + target.path, data=target.content, timeout=60)

    assert exit_code == 0, binstore.log()
    assert not response.startswith(b"HTTP/1.1 200"), response
    assert temporary_after_exit == []
    assert not blob_after_exit
    assert artifacts_without_blob(suite) == []
    assert metadata.json()["download_url"] is None, metadata.text
    assert retried.status_code == 200, retried.text
    assert blob_path(suite, sha256(target.content)).read_bytes() == target.content


def test_gateway_finishes_request_after_sigterm(suite: RunningSuite, start_service: Any) -> None:
    gateway = start_service("gateway", ATLAS_SHUTDOWN_GRACE_PERIOD="120")
    username = unique("publisher")
    token = suite.create_user(username)
    idle = send_head(gateway.port, "GET", "/api/v1/authenticate", {"X-Atlas-Token": token}, b"")
    first_response = idle.recv(65536)
    name = unique("box")
    body = json.dumps({"box": {"username": username, "name": name}}).encode()
    half = len(body) // 2
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
    }
    request = send_head(gateway.port, "POST", "/api/v1/boxes", headers, body[:half])
    assert wait_for(lambda: server_read_everything(request, gateway.port))

    gateway.process.send_signal(signal.SIGTERM)
    refused = wait_for(lambda: refuses_connections(gateway.port))
    idle_closed = read_response(idle)
    request.sendall(body[half:])
    response = read_response(request)
    exit_code = gateway.wait_for_exit()
    created = requests.get(f"{suite.api_url}/api/v1/box/{username}/{name}", timeout=30)

    assert first_response.startswith(b"HTTP/1.1 200"), first_response
    assert refused, "the gateway accepted new connections after SIGTERM"
    assert idle_closed == b""
    assert response.startswith(b"HTTP/1.1 200"), response
    assert b"connection: close" in response.lower()
    assert exit_code == 0, gateway.log()
    assert created.status_code == 200, created.text


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_exits_zero_after_sigterm(
    suite: RunningSuite, start_service: Any, name: str
) -> None:
    service = start_service(name)

    service.process.send_signal(signal.SIGTERM)
    exit_code = service.wait_for_exit()
    stopped = refuses_connections(service.port)

    assert exit_code == 0, service.log()
    assert "finished all work under way" in service.log()
    assert stopped


def test_sigterm_during_start_waits_for_the_start(start_service: Any) -> None:
    service = start_service("tests.slow_start:SlowStartService", wait=False)
    assert wait_for(lambda: STARTING_MESSAGE in service.log(), START_TIMEOUT), service.log()
    assert wait_for(lambda: health_status(service) is not None, START_TIMEOUT), service.log()
    health = requests.get(service.url + "/health/instance", timeout=5)

    service.process.send_signal(signal.SIGTERM)
    exit_code = service.wait_for_exit()
    log = service.log()

    assert health.status_code == 503, health.text
    assert health.json()["checks"]["start"] == {"status": "critical", "output": "still starting"}
    assert exit_code == 0, log
    assert "finished all work under way" in log, log
    assert log.index("started tests.slow_start") < log.index("finished all work under way"), log
    assert "Traceback" not in log, log


def health_status(service: ServiceProcess) -> int | None:
    try:
        return requests.get(service.url + "/health/instance", timeout=2).status_code
    except requests.RequestException:
        return None
