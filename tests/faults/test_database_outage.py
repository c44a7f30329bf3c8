"""PostgreSQL going away under a running suite, through a proxy that resets and rejects."""

from __future__ import annotations

import requests

from tests.boxes import build_box, sha256
from tests.faults.conftest import REQUEST_TIMEOUT, FaultySuite, assert_unavailable
from tests.publishing import api_publish


def test_database_outage_answers_503(faults: FaultySuite) -> None:
    client = faults.client()
    tag = api_publish(client, client.username)
    base = f"/api/v1/box/{tag}"
    assert client.post(f"{base}/versions", json={"version": {"version": "1.1.0"}}).ok
    assert client.post(f"{base}/version/1.1.0/providers", json={"provider": {"name": "libvirt"}}).ok
    upload_path = client.get(f"{base}/version/1.1.0/provider/libvirt/upload").json()["upload_path"]
    before = faults.counts(client.username)

    content = build_box("libvirt", disk_bytes=8192)
    faults.postgres.down()
    try:
        during = {
            "read box": client.get(base, timeout=REQUEST_TIMEOUT),
            "search": client.get("/api/v1/search", params={"q": tag}, timeout=REQUEST_TIMEOUT),
            "create box": client.post(
                "/api/v1/boxes",
                json={"username": client.username, "name": "made-during-outage"},
                timeout=REQUEST_TIMEOUT,
            ),
            "create version": client.post(
                f"{base}/versions", json={"version": {"version": "2.0.0"}}, timeout=REQUEST_TIMEOUT
            ),
            "upload": requests.put(upload_path, data=content, timeout=REQUEST_TIMEOUT),
        }
    finally:
        faults.postgres.resume()

    for what, response in during.items():
        assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
        assert_unavailable(response)
    assert faults.counts(client.username) == before
    assert not faults.artifact_exists(sha256(content))


def test_database_recovery_needs_no_restart(faults: FaultySuite) -> None:
    client = faults.client()
    tag = api_publish(client, client.username)
    base = f"/api/v1/box/{tag}"
    assert client.post(f"{base}/versions", json={"version": {"version": "1.1.0"}}).ok
    assert client.post(f"{base}/version/1.1.0/providers", json={"provider": {"name": "libvirt"}}).ok
    upload_path = client.get(f"{base}/version/1.1.0/provider/libvirt/upload").json()["upload_path"]
    before = faults.counts(client.username)
    content = build_box("libvirt", disk_bytes=8192)

    faults.postgres.down()
    assert_unavailable(client.get(base, timeout=REQUEST_TIMEOUT))
    faults.postgres.resume()

    # The first request after the outage already succeeds: stale pooled
    # connections are replaced, not handed to it.
    assert client.get(base, timeout=REQUEST_TIMEOUT).status_code == 200
    created = client.post(
        "/api/v1/boxes",
        json={"username": client.username, "name": "made-after-outage"},
        timeout=REQUEST_TIMEOUT,
    )
    assert created.status_code == 200, created.text
    version = client.post(
        f"{base}/versions", json={"version": {"version": "2.0.0"}}, timeout=REQUEST_TIMEOUT
    )
    assert version.status_code == 200, version.text
    uploaded = requests.put(upload_path, data=content, timeout=REQUEST_TIMEOUT)
    assert uploaded.status_code == 200, uploaded.text

    after = faults.counts(client.username)
    assert after["boxes"] == before["boxes"] + 1
    assert after["versions"] == before["versions"] + 1
    assert after["providers"] == before["providers"]
    assert after["hosted"] == before["hosted"] + 1
    assert faults.artifact_exists(sha256(content))


def test_database_partition_answers_503(faults: FaultySuite) -> None:
    client = faults.client()
    tag = api_publish(client, client.username)
    before = faults.counts(client.username)

    # A partition returns nothing, so requests wait for their RPC timeout
    # instead of failing at once as they do while connections are refused.
    faults.postgres.blackhole()
    try:
        read = client.get(f"/api/v1/box/{tag}", timeout=REQUEST_TIMEOUT)
        created = client.post(
            "/api/v1/boxes",
            json={"username": client.username, "name": "made-during-partition"},
            timeout=REQUEST_TIMEOUT,
        )
        health = requests.get(faults.suite.api_url + "/health", timeout=REQUEST_TIMEOUT)
    finally:
        faults.postgres.resume()

    assert_unavailable(read)
    assert_unavailable(created)
    assert health.status_code == 503, health.text
    assert client.get(f"/api/v1/box/{tag}", timeout=REQUEST_TIMEOUT).status_code == 200
    assert faults.counts(client.username) == before
