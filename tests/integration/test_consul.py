"""Registration in Consul, health checks and discovery, against the agent stand-in."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from nameko.standalone.rpc import ClusterRpcProxy

from gateway.service import GatewayService
from services.binstore.service import BinstoreService
from services.data.service import DataService
from services.jobs.service import JobsService
from services.toolkit import config as cfg
from services.workers.service import WorkersService
from tests.conftest import (
    RUN_ID,
    Client,
    create_test_database,
    drop_test_database,
    free_port,
    unique,
)
from tests.faults.proxy import FaultProxy
from tests.operations import (
    ROOT,
    ConsulAgent,
    Services,
    http_config,
    operations_config,
    own_vhost,
    registration_of,
    wait_for,
)

TOKEN = "consul-acl-token-for-tests"


@pytest.fixture
def agent() -> Iterator[ConsulAgent]:
    running = ConsulAgent(token=TOKEN, datacenter="atlas-dc")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def base_config(base_config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The shared settings on a database of this module's own.

    These tests start their own dispatcher, which would otherwise publish
    the jobs of the main suite's database onto this module's vhosts.
    """
    name = f"atlas_test_{RUN_ID}_consul"
    url = create_test_database(name)
    yield {**base_config, cfg.DB_URIS: {cfg.DATA_DB_KEY: url}}
    drop_test_database(name)


@pytest.fixture
def amqp_vhost() -> Iterator[str]:
    with own_vhost() as uri:
        yield uri


@pytest.fixture
def services(amqp_vhost: str) -> Iterator[Services]:
    # Depending on the vhost makes pytest stop the services before it removes
    # the vhost; a service whose vhost is gone retries forever and never stops.
    running = Services()
    yield running
    running.stop_all()


def consul_settings(agent: ConsulAgent) -> dict[str, Any]:
    return {
        cfg.CONSUL_URL: agent.url,
        cfg.CONSUL_TOKEN: TOKEN,
        cfg.CONSUL_DATACENTER: agent.datacenter,
    }


def test_instances_register_and_deregister(
    base_config: dict[str, Any], agent: ConsulAgent, services: Services, amqp_vhost: str
) -> None:
    config = operations_config(base_config, amqp_vhost, **consul_settings(agent))
    binstore_config, binstore_url = http_config(config)
    binstore_config[cfg.ATLAS][cfg.BINSTORE_URL] = "https://boxes.example.test"
    data = services.start(DataService, config)
    binstore = services.start(BinstoreService, binstore_config)

    data_id, binstore_id = registration_of(data), registration_of(binstore)
    registered = agent.services()
    assert set(registered) == {data_id, binstore_id}
    assert registered[data_id]["Service"] == "data"
    assert registered[data_id]["Tags"] == ["atlas"]
    assert registered[data_id]["Meta"]["version"]
    assert registered[binstore_id]["Port"] == int(binstore_url.rsplit(":", 1)[1])
    assert registered[binstore_id]["Meta"]["public_url"] == "https://boxes.example.test"

    checks = agent.checks()
    assert checks[f"service:{data_id}"]["Type"] == "ttl"
    assert checks[f"service:{binstore_id}"]["Type"] == "http"
    assert wait_for(lambda: agent.status_of(data_id) == "passing")
    assert wait_for(lambda: agent.status_of(binstore_id) == "passing")

    services.stop(binstore)
    assert set(agent.services()) == {data_id}
    services.stop(data)
    assert agent.services() == {}


def test_instance_registers_once_consul_is_up(
    base_config: dict[str, Any], services: Services, amqp_vhost: str
) -> None:
    port = free_port()
    config = operations_config(
        base_config,
        amqp_vhost,
        **{cfg.CONSUL_URL: f"http://127.0.0.1:{port}", cfg.CONSUL_DATACENTER: "late-dc"},
    )
    data = services.start(DataService, config)
    late_agent = ConsulAgent(datacenter="late-dc", port=port)
    try:
        registered = wait_for(lambda: registration_of(data) in late_agent.services())
        passing = wait_for(lambda: late_agent.status_of(registration_of(data)) == "passing")
    finally:
        late_agent.stop()

    assert registered
    assert passing


def test_ttl_check_turns_critical_when_broker_is_cut(
    base_config: dict[str, Any], agent: ConsulAgent, services: Services, amqp_vhost: str
) -> None:
    proxy = FaultProxy("127.0.0.1:5672").start()
    try:
        config = operations_config(base_config, proxy.url(amqp_vhost), **consul_settings(agent))
        data_id = registration_of(services.start(DataService, config))
        assert wait_for(lambda: agent.status_of(data_id) == "passing")

        proxy.down()
        assert wait_for(lambda: agent.status_of(data_id) == "critical")
        output = agent.check_of(data_id)["Output"]  # type: ignore[index]
        assert "broker" in output

        proxy.resume()
        assert wait_for(lambda: agent.status_of(data_id) == "passing", timeout=30)
    finally:
        # The service must stop while it can reach the broker, or it never stops.
        proxy.resume()
        services.stop_all()
        proxy.stop()


def test_ttl_check_turns_critical_when_database_fails(
    base_config: dict[str, Any], agent: ConsulAgent, services: Services, amqp_vhost: str
) -> None:
    config = operations_config(base_config, amqp_vhost, **consul_settings(agent))
    config[cfg.DB_URIS] = {cfg.DATA_DB_KEY: "postgresql+psycopg2://postgres@127.0.0.1:1/atlas"}
    data_id = registration_of(services.start(DataService, config))

    assert wait_for(lambda: "db:" in (agent.check_of(data_id) or {}).get("Output", ""))
    assert agent.status_of(data_id) == "critical"


def start_gateway_suite(
    base_config: dict[str, Any], agent: ConsulAgent, services: Services, amqp_vhost: str
) -> tuple[dict[str, Any], str]:
    """Start data, jobs, workers and a gateway registered in ``agent``.

    Returns the config and the API URL.
    """
    config = operations_config(base_config, amqp_vhost, **consul_settings(agent))
    services.start(DataService, config)
    services.start(JobsService, config)
    services.start(WorkersService, config)
    gateway_config, api_url = http_config(config)
    gateway_config[cfg.ATLAS][cfg.PUBLIC_URL] = api_url
    services.start(GatewayService, gateway_config)
    return config, api_url


def start_binstore(
    services: Services, config: dict[str, Any], storage_root: Path
) -> tuple[Any, str]:
    binstore_config, url = http_config(config)
    binstore_config[cfg.ATLAS] = {
        **binstore_config[cfg.ATLAS],
        cfg.BINSTORE_URL: url,
        cfg.STORAGE_ROOT: str(storage_root),
    }
    return services.start(BinstoreService, binstore_config), url


def provider_upload_path(client: Client) -> str:
    box = unique("routed")
    assert client.post("/api/v1/boxes", json={"username": client.username, "name": box}).ok
    prefix = f"/api/v1/box/{client.username}/{box}"
    assert client.post(f"{prefix}/versions", json={"version": {"version": "1.0.0"}}).ok
    assert client.post(
        f"{prefix}/version/1.0.0/providers", json={"provider": {"name": "libvirt"}}
    ).ok
    return f"{prefix}/version/1.0.0/provider/libvirt/upload"


def test_gateway_sends_uploads_only_to_passing_binstore(
    base_config: dict[str, Any],
    agent: ConsulAgent,
    services: Services,
    amqp_vhost: str,
    tmp_path: Path,
) -> None:
    config, api_url = start_gateway_suite(base_config, agent, services, amqp_vhost)
    healthy, healthy_url = start_binstore(services, config, tmp_path / "healthy")
    broken, broken_url = start_binstore(services, config, tmp_path / "broken")
    shutil.rmtree(tmp_path / "broken")
    assert wait_for(lambda: agent.status_of(registration_of(healthy)) == "passing")
    assert wait_for(lambda: agent.status_of(registration_of(broken)) == "critical")

    with api_user(config, api_url) as client:
        path = provider_upload_path(client)
        targets = [client.get(path).json()["upload_path"] for _ in range(6)]
        assert all(target.startswith(healthy_url + "/uploads/") for target in targets)

        services.stop(healthy)
        answers = wait_for(lambda: unavailable(client, path))
        assert answers, "the gateway kept handing out upload URLs"
        response = answers[0]
        assert response.headers["Retry-After"]
        assert "no binstore instance passes its health check" in response.json()["errors"][0]


def unavailable(client: Client, path: str) -> list[requests.Response]:
    # A list, because a 503 response is itself false.
    response = client.get(path)
    return [response] if response.status_code == 503 else []


@contextmanager
def api_user(config: dict[str, Any], api_url: str) -> Iterator[Client]:
    """Yield a new user of the gateway at ``api_url``, created over RPC."""
    proxy = ClusterRpcProxy(config, timeout=10)
    data = proxy.start().data
    try:
        username = unique("ops")
        data.create_user(username, None, None)
        token = data.issue_token(username, "test")["token"]
        yield Client(api_url, username, token)
    finally:
        proxy.stop()


def test_health_lists_instances_from_consul(
    base_config: dict[str, Any],
    agent: ConsulAgent,
    services: Services,
    amqp_vhost: str,
    tmp_path: Path,
) -> None:
    config, api_url = start_gateway_suite(base_config, agent, services, amqp_vhost)
    binstore, _ = start_binstore(services, config, tmp_path / "blobs")

    def passing_report() -> dict[str, Any] | None:
        response = requests.get(api_url + "/health", timeout=10)
        return response.json() if response.status_code == 200 else None

    report = wait_for(passing_report)
    assert report is not None
    assert report["source"] == "consul"
    assert set(report["services"]) >= {"data", "binstore", "gateway"}
    binstore_instances = report["services"]["binstore"]["instances"]
    assert [item["id"] for item in binstore_instances] == [registration_of(binstore)]

    services.stop(binstore)
    response = requests.get(api_url + "/health", timeout=10)
    assert response.status_code == 503
    assert response.json()["services"]["binstore"]["instances"][0]["output"] == (
        "no instance registered"
    )


def test_crashed_instance_is_removed_from_consul(
    base_config: dict[str, Any], agent: ConsulAgent, amqp_vhost: str, tmp_path: Path
) -> None:
    config = operations_config(
        base_config, amqp_vhost, **consul_settings(agent), **{cfg.DEREGISTER_CRITICAL_AFTER: 2}
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "services.toolkit.runner", "data", "--config", str(config_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        registered = wait_for(lambda: agent.instances("data"))
        assert registered, "the data service never registered"
        service_id = registered[0]["ID"]
        assert wait_for(lambda: agent.status_of(service_id) == "passing")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    assert wait_for(lambda: agent.status_of(service_id) == "critical")
    assert wait_for(lambda: service_id not in agent.services())
