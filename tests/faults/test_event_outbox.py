"""An upload committed while RabbitMQ is down: the data service survives, the event arrives.

The data service commits, then finds no broker for its event or its reply.
To get there, PostgreSQL is blackholed while the upload is under way, so
data's ``finish_upload`` call waits on the database. Then the broker goes
down, PostgreSQL comes back, and the commit goes through.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kombu import Connection, Exchange, Queue

from tests.boxes import build_box, sha256
from tests.conftest import Client
from tests.faults.conftest import REQUEST_TIMEOUT, RPC_TIMEOUT, FaultySuite, healthy, wait_until
from tests.faults.test_service_crash import service_pids
from tests.publishing import api_publish

OUTBOX_RELAY_TIMEOUT = 60  # seconds; the relay republishes events older than 5 s every 5 s
# Bytes sent before PostgreSQL is blackholed: more than loopback socket
# buffers hold, so binstore has passed begin_upload and is reading the file.
FIRST_PART = 16 * 1024 * 1024
PUBLISH_FAILED = "the outbox relay will retry"
REPLY_FAILED = "failed because the broker is unavailable"
ATTEMPTS = 3


@pytest.fixture
def provider_events(faulty_suite: FaultySuite) -> Iterator[Queue]:
    """A queue of the data service's provider events, reached without the proxy."""
    with Connection(faulty_suite.suite.amqp_uri.replace("pyamqp://", "amqp://")) as connection:
        exchange = Exchange("data.events", type="topic", durable=True)
        queue = Queue(f"faults-{uuid.uuid4().hex[:8]}", exchange, routing_key="provider.*")
        bound = queue(connection.default_channel)
        bound.declare()
        yield bound
        bound.delete()


def received_events(queue: Queue) -> list[dict[str, Any]]:
    events = []
    while (message := queue.get(no_ack=True)) is not None:
        events.append({"type": message.delivery_info["routing_key"], **json.loads(message.body)})
    return events


def log_count(faults: FaultySuite, fragment: str) -> int:
    return faults.suite.log_path.read_text().count(fragment)


def upload_across_outage(faults: FaultySuite, client: Client, tag: str, version: str) -> bool:
    """Upload a file to a new provider of ``tag`` across the outage.

    Return whether data committed the upload during the outage, or False
    when the request never reached data because the outbox relay's own
    query was the one that the blackhole held.
    """
    base = f"/api/v1/box/{tag}/version/{version}"
    assert client.post(f"/api/v1/box/{tag}/versions", json={"version": {"version": version}}).ok
    assert client.post(f"{base}/providers", json={"provider": {"name": "libvirt"}}).ok
    upload_path = client.get(f"{base}/provider/libvirt/upload").json()["upload_path"]
    content = build_box("libvirt", disk_bytes=FIRST_PART + 1024 * 1024)
    failures = log_count(faults, PUBLISH_FAILED)
    lost_replies = log_count(faults, REPLY_FAILED)
    hosted = faults.counts(client.username)["hosted"]
    responses: list[requests.Response] = []

    def body() -> Iterator[bytes]:
        yield content[:FIRST_PART]
        faults.postgres.blackhole()
        yield content[FIRST_PART:]

    def upload() -> None:
        responses.append(requests.put(upload_path, data=body(), timeout=REQUEST_TIMEOUT))

    uploader = threading.Thread(target=upload)
    uploader.start()
    wait_until(lambda: faults.postgres.stats().holding, "a query reaching the blackhole")
    faults.rabbitmq.down()
    faults.postgres.resume()
    wait_until(
        lambda: log_count(faults, PUBLISH_FAILED) > failures or not uploader.is_alive(),
        "the upload ending or its event failing to publish",
    )
    # binstore's call fails as soon as its broker connection drops, which can
    # be before data, with PostgreSQL back, commits the upload. Data gets the
    # time that the call would have waited for its reply.
    deadline = time.monotonic() + RPC_TIMEOUT
    while log_count(faults, PUBLISH_FAILED) <= failures and time.monotonic() < deadline:
        time.sleep(0.2)
    landed = log_count(faults, PUBLISH_FAILED) > failures
    if landed:
        # Its reply to binstore is lost too, which must not stop the service.
        wait_until(lambda: log_count(faults, REPLY_FAILED) > lost_replies, "the reply failing")
    uploader.join()
    faults.rabbitmq.resume()
    wait_until(lambda: healthy(faults.suite), "the suite passing its health check")

    if landed:
        assert faults.counts(client.username)["hosted"] == hosted + 1
        assert faults.artifact_exists(sha256(content))
    else:
        assert responses[0].status_code == 503, responses[0].text
        assert faults.counts(client.username)["hosted"] == hosted
    return landed


def test_upload_committed_during_broker_outage(faults: FaultySuite, provider_events: Queue) -> None:
    client = faults.client()
    tag = api_publish(client, client.username)
    [data_pid] = service_pids(faults.suite.pid, "data")

    landed = None
    for attempt in range(ATTEMPTS):
        if upload_across_outage(faults, client, tag, f"2.0.{attempt}"):
            landed = f"2.0.{attempt}"
            break
    assert landed, f"no upload in {ATTEMPTS} attempts reached data during the outage"

    # The data service survived the lost reply; atlas up did not restart it.
    assert service_pids(faults.suite.pid, "data") == [data_pid]
    delivered: list[dict[str, Any]] = []

    def relayed() -> bool:
        delivered.extend(received_events(provider_events))
        return any(
            event["type"] == "provider.uploaded"
            and event["tag"] == tag
            and event["version"] == landed
            for event in delivered
        )

    wait_until(relayed, "the relayed provider.uploaded event", OUTBOX_RELAY_TIMEOUT)
