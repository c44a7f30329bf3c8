"""One correlation id in the logs of every service a request reaches, and no secrets."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from nameko.containers import ServiceContainer
from nameko.events import event_handler

from services.toolkit.logs import ContextFilter, JsonFormatter
from services.toolkit.operations import ServiceOperations
from tests.boxes import build_box
from tests.conftest import Client, service_config, unique
from tests.integration.test_api_boxes import create_box, create_provider, create_version
from tests.operations import wait_for

audit_log = logging.getLogger("tests.audit")
recorded: list[dict[str, Any]] = []


class AuditTrail(ServiceOperations):
    """An event subscriber built on the toolkit, as a worker service would be."""

    name = "test_audit_trail"

    @event_handler("data", "box.created")
    def box_created(self, payload: dict[str, Any]) -> None:
        audit_log.info("recorded box.created for %s", payload["tag"])
        recorded.append(payload)


class JsonLines:
    """Log records of the whole process, formatted as the services write them."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def services_with(self, correlation_id: str) -> set[str]:
        return {
            entry.get("service", "-")
            for entry in self.entries()
            if entry.get("correlation_id") == correlation_id
        }


@pytest.fixture
def logs() -> Iterator[JsonLines]:
    captured = JsonLines()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    watched = [logging.getLogger("atlas"), audit_log]
    levels = [logger.level for logger in watched]
    for logger in watched:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield captured
    finally:
        logging.getLogger().removeHandler(handler)
        for logger, level in zip(watched, levels, strict=True):
            logger.setLevel(level)


def test_correlation_id_reaches_data_and_subscribers(
    suite: Any, user: Client, logs: JsonLines
) -> None:
    subscriber = ServiceContainer(AuditTrail, service_config(suite.config))
    subscriber.start()
    try:
        request_id = f"req-{uuid.uuid4().hex}"
        name = unique("traced")
        response = user.post(
            "/api/v1/boxes",
            json={"username": user.username, "name": name},
            headers={"X-Request-Id": request_id},
        )
        tag = f"{user.username}/{name}"
        assert wait_for(lambda: any(item["tag"] == tag for item in recorded))
    finally:
        subscriber.stop()

    assert response.status_code == 200, response.text
    assert response.headers["X-Request-Id"] == request_id
    assert logs.services_with(request_id) >= {"gateway", "data", "test_audit_trail"}
    audit_lines = [
        entry
        for entry in logs.entries()
        if entry["logger"] == "tests.audit" and tag in entry["message"]
    ]
    assert [entry["correlation_id"] for entry in audit_lines] == [request_id]


def test_binstore_upload_shares_its_id_with_data(user: Client, logs: JsonLines) -> None:
    box = create_box(user)
    create_version(user, box)
    create_provider(user, box)
    target = user.get(
        f"/api/v1/box/{user.username}/{box}/version/1.0.0/provider/libvirt/upload"
    ).json()["upload_path"]
    request_id = f"upload-{uuid.uuid4().hex}"

    stored = requests.put(
        target, data=build_box(), headers={"X-Request-Id": request_id}, timeout=30
    )

    assert stored.status_code == 200, stored.text
    assert logs.services_with(request_id) >= {"binstore", "data"}


def test_gateway_replaces_missing_or_invalid_id(user: Client) -> None:
    plain = user.get("/api/v1/authenticate")
    spaced = user.get("/api/v1/authenticate", headers={"X-Request-Id": "forged id level=ERROR"})
    long = user.get("/api/v1/authenticate", headers={"X-Request-Id": "a" * 65})

    assert len(plain.headers["X-Request-Id"]) == 32
    assert len(spaced.headers["X-Request-Id"]) == 32
    assert len(long.headers["X-Request-Id"]) == 32


def test_request_log_redacts_tokens(user: Client, anonymous: Client, logs: JsonLines) -> None:
    assert user.token is not None
    query = anonymous.get("/api/v1/authenticate", params={"access_token": user.token})
    box = create_box(user)
    create_version(user, box)
    create_provider(user, box)
    target = user.get(
        f"/api/v1/box/{user.username}/{box}/version/1.0.0/provider/libvirt/upload"
    ).json()["upload_path"]
    upload_token = target.rsplit("/", 1)[1]
    requests.put(target, data=build_box(), timeout=30)

    assert query.status_code == 200
    assert user.token not in logs.text
    assert upload_token not in logs.text
    messages = [entry["message"] for entry in logs.entries()]
    assert any("/api/v1/authenticate?access_token=[redacted] 200" in line for line in messages)
    assert any("PUT /uploads/[redacted] 200" in line for line in messages)


def test_caller_error_is_not_logged_as_error(
    anonymous: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="nameko.containers")

    response = anonymous.get(f"/api/v1/box/{unique('nobody')}/missing")

    assert response.status_code == 404
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []
    # The data service's RPC raised NotFound: nameko logged it as expected.
    assert any("(expected)" in record.getMessage() for record in caplog.records)
