"""Helpers for tests of operations: a Consul agent stand-in and services in their own vhost.

Tests that stop services or cut connections run their own copies of the
services in a vhost of their own, so the session's ``suite`` keeps working.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import eventlet
import requests
from nameko.containers import ServiceContainer

from services.toolkit import config as cfg
from tests.conftest import create_test_vhost, delete_test_vhost, free_port

ROOT = Path(__file__).resolve().parents[1]
AGENT_START_TIMEOUT = 15.0  # seconds


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, step: float = 0.1) -> Any:
    """Return the first true value of ``predicate`` within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        eventlet.sleep(step)
    return None


class ConsulAgent:
    """The stand-in agent of ``tests.consul_agent``, running as a process on a loopback port."""

    def __init__(
        self, token: str | None = None, datacenter: str = "dc1", port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.datacenter = datacenter
        command = [
            sys.executable,
            "-m",
            "tests.consul_agent",
            "--port",
            str(self.port),
            "--datacenter",
            datacenter,
            "--min-deregister",
            "1",
            "--reap-interval",
            "0.5",
        ]
        if token:
            command += ["--token", token]
        self.process = subprocess.Popen(command, cwd=ROOT)
        if not wait_for(self._answers, AGENT_START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"the Consul agent stand-in did not start on port {self.port}")

    def _answers(self) -> bool:
        try:
            return self.get("/v1/status/leader").status_code == 200
        except requests.RequestException:
            return False

    def get(self, path: str, **params: Any) -> requests.Response:
        headers = {"X-Consul-Token": self.token} if self.token else {}
        return requests.get(self.url + path, params=params, headers=headers, timeout=5)

    def services(self) -> dict[str, Any]:
        return dict(self.get("/v1/agent/services").json())

    def checks(self) -> dict[str, Any]:
        return dict(self.get("/v1/agent/checks").json())

    def instances(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in self.services().values() if entry["Service"] == name]

    def check_of(self, service_id: str) -> dict[str, Any] | None:
        return self.checks().get(f"service:{service_id}")

    def status_of(self, service_id: str) -> str | None:
        check = self.check_of(service_id)
        return check["Status"] if check else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def own_vhost() -> Iterator[str]:
    """Yield the AMQP URI of a new vhost, removed afterwards."""
    name = f"atlas_test_ops_{uuid.uuid4().hex[:10]}"
    uri = create_test_vhost(name)
    try:
        yield uri
    finally:
        delete_test_vhost(name)


def operations_config(base: dict[str, Any], amqp_uri: str, **atlas: Any) -> dict[str, Any]:
    """Return a copy of ``base`` on ``amqp_uri`` with quick checks and ``atlas`` settings."""
    settings = {
        **base[cfg.ATLAS],
        cfg.CHECK_INTERVAL: 0.5,
        cfg.DEREGISTER_CRITICAL_AFTER: 60,
        cfg.DISCOVERY_CACHE_TTL: 0.2,
        cfg.HEALTH_TIMEOUT: 1,
        cfg.RPC_TIMEOUT: 2,
        **atlas,
    }
    return {**base, cfg.AMQP_URI: amqp_uri, cfg.ATLAS: settings}


def http_config(config: dict[str, Any], port: int | None = None) -> tuple[dict[str, Any], str]:
    """Return ``config`` listening on a free loopback port, and that port's URL."""
    port = port or free_port()
    return {**config, cfg.WEB_SERVER_ADDRESS: f"127.0.0.1:{port}"}, f"http://127.0.0.1:{port}"


class Services:
    """Service containers a test starts and that are all stopped when it ends."""

    def __init__(self) -> None:
        self.containers: list[ServiceContainer] = []

    def start(self, service_cls: type, config: dict[str, Any]) -> ServiceContainer:
        container = ServiceContainer(service_cls, config)
        container.start()
        self.containers.append(container)
        return container

    def stop(self, container: ServiceContainer) -> None:
        container.stop()
        self.containers.remove(container)

    def stop_all(self) -> None:
        for container in reversed(self.containers):
            container.stop()
        self.containers.clear()


def registration_of(container: ServiceContainer) -> str:
    """Return the Consul service id a running container registered under."""
    for dependency in container.dependencies:
        if dependency.attr_name == "consul_registration":
            return str(dependency.service_id)
    raise LookupError(f"{container.service_name} has no Consul registration")
