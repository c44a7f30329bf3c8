"""The Consul agent stand-in behaves as the agent does for what Atlas uses."""

from __future__ import annotations

from collections.abc import Iterator

import consul
import eventlet
import pytest
from eventlet import wsgi

from tests.operations import ConsulAgent, wait_for


@pytest.fixture(scope="module")
def agent() -> Iterator[ConsulAgent]:
    running = ConsulAgent(token="secret-token", datacenter="dc-test")
    yield running
    running.stop()


@pytest.fixture
def client(agent: ConsulAgent) -> consul.Consul:
    return consul.Consul(port=agent.port, token="secret-token", dc="dc-test")


def test_ttl_check_turns_critical_when_not_passed(client: consul.Consul) -> None:
    client.agent.service.register("ttl-svc", service_id="ttl-1", check=consul.Check.ttl("1s"))
    assert client.agent.check.ttl_pass("service:ttl-1", "fine")

    _, passing = client.health.service("ttl-svc", passing=True)
    assert [entry["Service"]["ID"] for entry in passing] == ["ttl-1"]
    assert wait_for(lambda: not client.health.service("ttl-svc", passing=True)[1], timeout=10)
    check = client.agent.checks()["service:ttl-1"]
    assert check["Status"] == "critical"
    assert check["Output"] == "TTL expired"
    client.agent.service.deregister("ttl-1")


def test_http_check_follows_the_server(client: consul.Consul) -> None:
    server = eventlet.listen(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def app(environ: dict, start_response: object) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [b"fine"]

    thread = eventlet.spawn(wsgi.server, server, app, log_output=False)
    check = consul.Check.http(f"http://127.0.0.1:{port}/", interval="0.2s", timeout="1s")
    client.agent.service.register("http-svc", service_id="http-1", check=check)
    try:
        assert wait_for(lambda: client.health.service("http-svc", passing=True)[1])
        thread.kill()
        server.close()
        assert wait_for(lambda: not client.health.service("http-svc", passing=True)[1])
        output = client.agent.checks()["service:http-1"]["Output"]
        assert f"http://127.0.0.1:{port}/" in output
    finally:
        client.agent.service.deregister("http-1")


def test_critical_service_is_reaped(client: consul.Consul) -> None:
    check = {**consul.Check.ttl("0.3s"), "DeregisterCriticalServiceAfter": "0.5s"}
    client.agent.service.register("doomed", service_id="doomed-1", check=check)

    assert wait_for(lambda: "doomed-1" not in client.agent.services(), timeout=10)


def test_unknown_check_is_not_found(client: consul.Consul) -> None:
    assert client.agent.check.ttl_pass("service:nothing-here") is False


def test_wrong_token_and_datacenter_are_rejected(agent: ConsulAgent) -> None:
    with pytest.raises(consul.ACLPermissionDenied):
        consul.Consul(port=agent.port, token="wrong").agent.services()
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        consul.Consul(port=agent.port, token="secret-token", dc="elsewhere").health.service("x")
