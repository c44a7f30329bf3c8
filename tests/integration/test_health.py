"""GET /health, `atlas status` and the 503 a request gets while the data service is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kombu import Connection

from gateway.service import GatewayService
from services.binstore.service import BinstoreService
from services.cli.main import main as atlas
from services.data.service import DataService
from services.toolkit import config as cfg
from tests.conftest import Client
from tests.operations import Services, http_config, operations_config, own_vhost, wait_for

RPC_TIMEOUT = 2  # seconds the isolated gateway waits for the data service


@pytest.fixture
def isolated() -> Iterator[tuple[Services, str]]:
    with own_vhost() as uri:
        services = Services()
        try:
            yield services, uri
        finally:
            services.stop_all()


def start_suite(
    base_config: dict[str, Any], services: Services, amqp_uri: str, storage: Path
) -> tuple[dict[str, Any], str]:
    """Start data, binstore and a gateway on ``amqp_uri``; return the data config and API URL."""
    config = operations_config(base_config, amqp_uri, **{cfg.RPC_TIMEOUT: RPC_TIMEOUT})
    services.start(DataService, config)
    binstore_config, _ = http_config(config)
    binstore_config[cfg.ATLAS][cfg.STORAGE_ROOT] = str(storage)
    services.start(BinstoreService, binstore_config)
    gateway_config, api_url = http_config(config)
    services.start(GatewayService, gateway_config)
    return config, api_url


def test_health_reports_each_service_over_rpc(suite: Any) -> None:
    response = requests.get(suite.api_url + "/health", timeout=30)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "passing"
    assert report["source"] == "rpc"
    assert set(report["services"]) == {"data", "binstore", "gateway", "jobs", "workers"}
    for name, service in report["services"].items():
        assert service["status"] == "passing", name
        assert service["instances"][0]["output"] == "ok"


def test_instance_health_lists_its_checks(suite: Any) -> None:
    response = requests.get(suite.binstore_url + "/health/instance", timeout=30)

    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks["broker"]["status"] == "passing"
    assert checks["storage"]["status"] == "passing"


def test_request_gets_503_while_data_is_down(
    base_config: dict[str, Any], isolated: tuple[Services, str], tmp_path: Path, make_user: Any
) -> None:
    services, amqp_uri = isolated
    config, api_url = start_suite(base_config, services, amqp_uri, tmp_path)
    box = make_user()
    client = Client(api_url, box.username, box.token)
    assert client.get("/api/v1/authenticate").status_code == 200

    services.stop(services.containers[0])
    # The client waits twice the gateway's RPC timeout, so any response at
    # all shows that the call did not hang.
    down = client.get("/api/v1/authenticate", timeout=RPC_TIMEOUT * 2 + 5)
    assert down.status_code == 503
    assert down.headers["Retry-After"] == "5"
    assert down.json() == {
        "errors": [f"service data did not answer authenticate within {RPC_TIMEOUT} seconds"],
        "success": False,
    }
    page = requests.get(api_url + "/", timeout=RPC_TIMEOUT * 2 + 5)
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "5"
    health = requests.get(api_url + "/health", timeout=30)
    assert health.status_code == 503
    assert health.json()["services"]["data"]["status"] == "critical"
    assert health.json()["services"]["binstore"]["status"] == "passing"

    services.start(DataService, config)
    assert wait_for(lambda: client.get("/api/v1/authenticate").status_code == 200)


def queued_messages(amqp_uri: str, queue: str) -> int:
    # A passive declare counts the messages now; the management API's
    # statistics lag by seconds.
    with Connection(amqp_uri.replace("pyamqp://", "amqp://")) as connection:
        return int(connection.default_channel.queue_declare(queue, passive=True).message_count)


def test_call_to_stopped_service_expires_in_its_queue(
    base_config: dict[str, Any], isolated: tuple[Services, str], tmp_path: Path, make_user: Any
) -> None:
    services, amqp_uri = isolated
    start_suite(base_config, services, amqp_uri, tmp_path)
    user = make_user()
    api_url = services.containers[2].config[cfg.WEB_SERVER_ADDRESS]
    client = Client(f"http://{api_url}", user.username, user.token)
    assert client.get("/api/v1/authenticate").status_code == 200

    services.stop(services.containers[0])
    down = client.get("/api/v1/authenticate", timeout=RPC_TIMEOUT * 2 + 5)
    assert down.status_code == 503

    # The broker drops a request that no consumer read within the caller's
    # timeout, so a data service started later does not carry it out.
    assert wait_for(lambda: queued_messages(amqp_uri, "rpc-data") == 0, timeout=30)


def write_config(config: dict[str, Any], path: Path) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_atlas_status_prints_a_table(
    suite: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = write_config(suite.config, tmp_path / "config.yaml")

    code = atlas(["--config", config_path, "status"])

    output = capsys.readouterr().out
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split() == ["SERVICE", "INSTANCE", "STATUS", "DETAIL"]
    rows = {line.split()[0]: line.split() for line in lines[1:6]}
    assert set(rows) == {"binstore", "data", "gateway", "jobs", "workers"}
    assert all(row[2] == "passing" for row in rows.values())
    assert "Atlas is passing (health from rpc)" in output


def test_status_fails_while_data_is_down(
    base_config: dict[str, Any],
    isolated: tuple[Services, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    services, amqp_uri = isolated
    config, api_url = start_suite(base_config, services, amqp_uri, tmp_path / "blobs")
    services.stop(services.containers[0])
    config_path = write_config(config, tmp_path / "config.yaml")

    code = atlas(["--config", config_path, "status", "--url", api_url])

    output = capsys.readouterr().out
    assert code == 1
    data_row = next(line for line in output.splitlines() if line.startswith("data "))
    assert "critical" in data_row
    assert "did not answer instance_health" in data_row


def test_atlas_status_names_an_unreachable_gateway(
    tmp_path: Path, base_config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = write_config(base_config, tmp_path / "config.yaml")

    code = atlas(["--config", config_path, "status", "--url", "http://127.0.0.1:9"])

    assert code == 1
    assert "cannot reach the gateway at http://127.0.0.1:9/health" in capsys.readouterr().err
