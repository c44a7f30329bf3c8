"""RabbitMQ restarting under a running suite, through a proxy that resets and rejects."""

from __future__ import annotations

import requests

from tests.boxes import build_box, sha256
from tests.faults.conftest import (
    REQUEST_TIMEOUT,
    FaultySuite,
    assert_unavailable,
    healthy,
    wait_until,
)
from tests.publishing import api_publish


def test_broker_outage_answers_503(faults: FaultySuite) -> None:
    client = faults.client()
    tag = api_publish(client, client.username)
    before = faults.counts(client.username)

    faults.rabbitmq.down()
    try:
        read = client.get(f"/api/v1/box/{tag}", timeout=REQUEST_TIMEOUT)
        created = client.post(
            "/api/v1/boxes",
            json={"username": client.username, "name": "made-during-outage"},
            timeout=REQUEST_TIMEOUT,
        )
    finally:
        faults.rabbitmq.resume()

    assert_unavailable(read)
    assert_unavailable(created)
    assert faults.counts(client.username) == before


def test_services_reconnect_after_broker_restart(faults: FaultySuite) -> None:
    client = faults.client()
    tag = api_publish(client, client.username)
    accepted = faults.rabbitmq.stats().accepted

    faults.rabbitmq.down()
    faults.rabbitmq.resume()
    wait_until(lambda: healthy(faults.suite), "the suite passing its health check")

    assert faults.rabbitmq.stats().accepted > accepted
    assert client.get(f"/api/v1/box/{tag}", timeout=REQUEST_TIMEOUT).status_code == 200
    other = api_publish(client, client.username, versions=("1.0.0", "1.1.0"))
    assert client.get(f"/api/v1/box/{other}", timeout=REQUEST_TIMEOUT).json()["versions"]
    faults.client()  # atlas users create talks to the data service over RPC


def test_upload_across_broker_restart(faults: FaultySuite) -> None:
    client = faults.client()
    tag = api_publish(client, client.username, versions=())
    base = f"/api/v1/box/{tag}"
    assert client.post(f"{base}/versions", json={"version": {"version": "1.0.0"}}).ok
    assert client.post(f"{base}/version/1.0.0/providers", json={"provider": {"name": "libvirt"}}).ok
    upload_path = client.get(f"{base}/version/1.0.0/provider/libvirt/upload").json()["upload_path"]
    content = build_box("libvirt", disk_bytes=512 * 1024)
    half = len(content) // 2

    def body():  # type: ignore[no-untyped-def]
        yield content[:half]
        # The broker goes down while binstore receives the file, before it
        # records the upload with the data service.
        faults.rabbitmq.down()
        yield content[half:]

    try:
        uploaded = requests.put(upload_path, data=body(), timeout=REQUEST_TIMEOUT)
    finally:
        faults.rabbitmq.resume()
    wait_until(lambda: healthy(faults.suite), "the suite passing its health check")

    provider = client.get(f"{base}/version/1.0.0/provider/libvirt", timeout=REQUEST_TIMEOUT)
    assert provider.status_code == 200, provider.text
    if uploaded.status_code == 200:
        assert provider.json()["hosted"] is True
        assert faults.artifact_exists(sha256(content))
        return
    assert_unavailable(uploaded)
    assert faults.counts(client.username)["hosted"] == 0

    # The upload URL is still good: sending the file again stores it.
    retried = requests.put(upload_path, data=content, timeout=REQUEST_TIMEOUT)
    assert retried.status_code == 200, retried.text
    assert faults.counts(client.username)["hosted"] == 1
    assert faults.artifact_exists(sha256(content))
