"""Events leave the data service only after their transaction commits."""

from __future__ import annotations

from typing import Any

import eventlet
from nameko.containers import ServiceContainer
from nameko.events import event_handler

from tests.conftest import Client, service_config, unique

received: list[tuple[str, dict[str, Any]]] = []


class Recorder:
    name = "test_event_recorder"

    @event_handler("data", "box.created")
    def box_created(self, payload: dict[str, Any]) -> None:
        received.append(("box.created", payload))

    @event_handler("data", "version.released")
    def version_released(self, payload: dict[str, Any]) -> None:
        received.append(("version.released", payload))


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    with eventlet.Timeout(timeout, False):
        while not predicate():
            eventlet.sleep(0.05)
        return True
    return False


def test_box_created_event_carries_schema_version(suite: Any, user: Client) -> None:
    container = ServiceContainer(Recorder, service_config(suite.config))
    container.start()
    try:
        name = unique("evented")
        user.post("/api/v1/boxes", json={"username": user.username, "name": name})
        tag = f"{user.username}/{name}"
        arrived = wait_for(lambda: any(p.get("tag") == tag for _, p in received))
    finally:
        container.stop()

    assert arrived
    event_type, payload = next((t, p) for t, p in received if p.get("tag") == tag)
    assert event_type == "box.created"
    assert payload["schema_version"] == 1
    assert payload["private"] is False


def test_rejected_change_publishes_no_event(suite: Any, user: Client) -> None:
    container = ServiceContainer(Recorder, service_config(suite.config))
    container.start()
    try:
        name = unique("once")
        user.post("/api/v1/boxes", json={"username": user.username, "name": name})
        duplicate = user.post("/api/v1/boxes", json={"username": user.username, "name": name})
        tag = f"{user.username}/{name}"
        wait_for(lambda: any(p.get("tag") == tag for _, p in received))
        eventlet.sleep(0.5)
    finally:
        container.stop()

    assert duplicate.status_code == 422
    assert sum(1 for _, p in received if p.get("tag") == tag) == 1
