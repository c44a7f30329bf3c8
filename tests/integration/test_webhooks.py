"""Webhooks: signed deliveries to a receiver on loopback, retried with backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import create_engine, text

from tests.boxes import build_box
from tests.conftest import Client, wait_for
from tests.integration.test_api_boxes import assert_error, create_box, published_box
from tests.loopback import Request, serve


def check_signature(secret: str, request: Request) -> bool:
    fields = dict(part.split("=", 1) for part in request.headers["X-Atlas-Signature"].split(","))
    signed = f"{fields['t']}.".encode() + request.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def delivery_jobs(client: Client, webhook_id: int) -> list[dict[str, Any]]:
    return list(client.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()["jobs"])


def test_receiver_gets_signed_delivery_after_two_failures(user: Client) -> None:
    def flaky(request: Request, number: int) -> tuple[int, dict[str, str], bytes]:
        return (500 if number < 2 else 200), {}, b"ok"

    with serve(flaky) as receiver:
        created = user.post(
            "/api/v1/webhooks",
            json={
                "username": user.username,
                "url": receiver.url + "/hook",
                "events": ["version.released"],
            },
        )
        webhook = created.json()
        box = published_box(user, build_box())

        def delivered() -> dict[str, Any] | None:
            jobs = delivery_jobs(user, webhook["id"])
            return jobs[0] if jobs and jobs[0]["state"] == "succeeded" else None

        job = wait_for(delivered)
        detail = user.get(f"/api/v1/jobs/{job['id']}").json() if job else {}

    assert created.status_code == 201, created.text
    assert webhook["secret"].startswith("whsec_")
    assert job is not None
    assert len(receiver.requests) == 3
    assert all(check_signature(webhook["secret"], r) for r in receiver.requests)
    assert {r.headers["X-Atlas-Delivery"] for r in receiver.requests} == {str(job["id"])}
    body = json.loads(receiver.requests[-1].body)
    assert body["event"] == "version.released"
    assert body["data"]["tag"] == f"{user.username}/{box}"
    assert [e["error"] for e in detail["history"] if e["trigger"] == "fail"] == [
        "RuntimeError: receiver responded with HTTP 500",
        "RuntimeError: receiver responded with HTTP 500",
    ]
    assert detail["result"]["status"] == 200


def test_box_webhook_hears_only_its_box(user: Client) -> None:
    with serve(lambda request, number: (204, {}, b"")) as receiver:
        watched = create_box(user)
        webhook = user.post(
            "/api/v1/webhooks",
            json={
                "box": f"{user.username}/{watched}",
                "url": receiver.url,
                "events": ["provider.uploaded"],
            },
        ).json()
        from tests.integration.test_api_boxes import create_provider, create_version, upload

        for box in (create_box(user), watched):
            create_version(user, box)
            create_provider(user, box)
            upload(user, box, build_box())

        wait_for(lambda: len(receiver.requests) >= 1)
        jobs = wait_for(
            lambda: [j for j in delivery_jobs(user, webhook["id"]) if j["state"] == "succeeded"]
        )

    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["data"]["name"] == watched
    assert len(jobs) == 1


def test_webhook_secret_is_stored_encrypted(user: Client, database_url: str) -> None:
    webhook = user.post(
        "/api/v1/webhooks",
        json={
            "username": user.username,
            "url": "https://example.org/h",
            "events": ["job.finished"],
        },
    ).json()
    engine = create_engine(database_url)
    with engine.connect() as connection:
        stored = connection.scalar(
            text("SELECT secret_encrypted FROM webhooks WHERE id = :id"), {"id": webhook["id"]}
        )
    engine.dispose()
    shown = user.get(f"/api/v1/webhooks/{webhook['id']}").json()

    assert webhook["secret"] not in stored
    assert "secret" not in shown
    assert shown["events"] == ["job.finished"]


def test_webhook_management_is_for_account_managers(user: Client, make_user: Any) -> None:
    other = make_user()
    body = {"username": user.username, "url": "https://example.org/h", "events": ["job.finished"]}
    webhook = user.post("/api/v1/webhooks", json=body).json()

    assert_error(other.post("/api/v1/webhooks", json=body), 403, "may not change")
    assert_error(other.get(f"/api/v1/webhooks/{webhook['id']}"), 404, "not found")
    assert_error(other.delete(f"/api/v1/webhooks/{webhook['id']}"), 404, "not found")
    assert user.delete(f"/api/v1/webhooks/{webhook['id']}").status_code == 200
    assert_error(user.get(f"/api/v1/webhooks/{webhook['id']}"), 404, "not found")


def test_webhook_input_is_validated(user: Client) -> None:
    def create(**fields: Any) -> Any:
        return user.post("/api/v1/webhooks", json={"username": user.username, **fields})

    assert_error(create(url="ftp://x.org", events=["job.finished"]), 422, "http or https")
    assert_error(
        create(url="https://u:p@x.org", events=["job.finished"]), 422, "user name or password"
    )
    assert_error(create(url="https://x.org", events=["box.exploded"]), 422, "not supported")
    assert_error(create(url="https://x.org", events=[]), 422, "events")
    assert_error(
        user.post(
            "/api/v1/webhooks",
            json={"url": "https://x.org", "events": ["job.finished"]},
        ),
        422,
        "either username",
    )
