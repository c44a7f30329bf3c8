"""/metrics in Prometheus text format, read back with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from services.data.service import DataService
from services.toolkit import config as cfg
from tests.boxes import build_box
from tests.conftest import Client, free_port
from tests.integration.test_api_boxes import published_box
from tests.operations import Services, operations_config, own_vhost, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    response = requests.get(url + "/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_rpc_calls_and_bytes(
    suite: Any, user: Client, anonymous: Client
) -> None:
    before = scrape(suite.api_url)
    content = build_box()
    box = published_box(user, content)
    # box.inspect reads the file through binstore too; count only the download below.
    published = scrape(suite.api_url)
    url = anonymous.get(f"/{user.username}/{box}").json()["versions"][0]["providers"][0]["url"]
    assert requests.get(url, timeout=30).content == content
    after = scrape(suite.api_url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"service": "gateway", "method": "POST", "route": "/api/v1/boxes"}
    assert grew("atlas_http_requests_total", **route, status="200") == 1
    assert grew("atlas_http_request_duration_seconds_count", **route) == 1
    assert grew("atlas_rpc_requests_total", service="data", method="create_box", outcome="ok") == 1
    assert (
        grew(
            "atlas_rpc_client_calls_total",
            service="gateway",
            target="data",
            method="create_box",
            outcome="ok",
        )
        == 1
    )
    assert grew("atlas_upload_bytes_total") == len(content)
    downloaded = value(after, "atlas_download_bytes_total") - value(
        published, "atlas_download_bytes_total"
    )
    assert downloaded == len(content)
    assert ("atlas_queue_messages", frozenset({("queue", "rpc-data")})) in after
    assert value(after, "atlas_queue_consumers", queue="rpc-data") >= 1


def test_binstore_serves_the_same_metrics(suite: Any) -> None:
    samples = scrape(suite.binstore_url)

    assert any(name == "atlas_upload_bytes_total" for name, _ in samples)


def test_job_transitions_appear_in_metrics(suite: Any, data_rpc: Any) -> None:
    before = scrape(suite.api_url)
    job_id = data_rpc.submit_job("atlas.noop", {})["id"]
    assert wait_for(lambda: data_rpc.describe_job(job_id)["state"] == "succeeded")
    # The transition is counted right after its commit, which follows the reply.
    after = wait_for(
        lambda: (
            (samples := scrape(suite.api_url))
            and value(samples, "atlas_job_transitions_total", kind="atlas.noop", state="succeeded")
            > value(before, "atlas_job_transitions_total", kind="atlas.noop", state="succeeded")
            and samples
        )
    )

    assert after, "atlas_job_transitions_total did not count the job"
    for state in ("queued", "running", "succeeded"):
        labels = {"kind": "atlas.noop", "state": state}
        grew = value(after, "atlas_job_transitions_total", **labels) - value(
            before, "atlas_job_transitions_total", **labels
        )
        assert grew >= 1, state


@pytest.fixture
def data_with_listener(base_config: dict[str, Any]) -> Iterator[str]:
    address = f"127.0.0.1:{free_port()}"
    with own_vhost() as amqp_uri:
        services = Services()
        config = operations_config(base_config, amqp_uri, **{cfg.OPERATIONS_ADDRESS: address})
        services.start(DataService, config)
        try:
            yield f"http://{address}"
        finally:
            services.stop_all()


def test_rpc_only_service_serves_metrics_and_health(data_with_listener: str) -> None:
    samples = scrape(data_with_listener)
    health = wait_for(lambda: healthy(data_with_listener))

    assert ("atlas_queue_consumers", frozenset({("queue", "rpc-data")})) in samples
    assert health is not None
    assert health["checks"]["db"]["status"] == "passing"
    missing = requests.get(data_with_listener + "/nowhere", timeout=10)
    assert missing.status_code == 404


def healthy(url: str) -> dict[str, Any] | None:
    response = requests.get(url + "/health/instance", timeout=10)
    return response.json() if response.status_code == 200 else None
