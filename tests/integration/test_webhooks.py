"""Webhook subscriptions and their signed deliveries, to receivers on loopback addresses."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from services.toolkit import config as cfg
from services.toolkit.crypto import seal, unseal
from tests.conftest import Client, Suite, unique
from tests.integration.test_api_organizations import create_organization, set_role
from tests.loopback import WebhookReceiver
from tests.operations import wait_for
from tests.publishing import api_publish, box_file_for
from tests.responses import assert_error

ALL_EVENTS = ["version.released", "version.revoked", "provider.uploaded", "job.finished"]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


def subscribe(client: Client, path: str, url: str, events: list[str]) -> dict[str, Any]:
    response = client.post(f"/api/v1/{path}/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    return dict(response.json())


def empty_box(client: Client) -> str:
    name = unique("box")
    created = client.post("/api/v1/boxes", json={"username": client.username, "name": name})
    assert created.status_code == 200, created.text
    return f"{client.username}/{name}"


def upload_version(client: Client, tag: str, version: str = "1.0.0") -> None:
    """Create ``version`` with a libvirt provider and upload its box file, unreleased."""
    base = f"/api/v1/box/{tag}"
    steps = [
        client.post(f"{base}/versions", json={"version": {"version": version}}),
        client.post(f"{base}/version/{version}/providers", json={"provider": {"name": "libvirt"}}),
    ]
    target = client.get(f"{base}/version/{version}/provider/libvirt/upload")
    steps.append(target)
    steps.append(client.session.put(target.json()["upload_path"], data=box_file_for("libvirt")))
    for step in steps:
        assert step.status_code == 200, step.text


def deliveries(client: Client, tag: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/jobs", params={"box": tag, "kind": "webhook.deliver"})
    assert response.status_code == 200, response.text
    return list(response.json()["jobs"])


def wait_for_deliveries(client: Client, tag: str, count: int = 1) -> list[dict[str, Any]]:
    """Wait until ``count`` deliveries of ``tag`` have finished; return them, newest first."""

    def finished() -> list[dict[str, Any]] | None:
        jobs = deliveries(client, tag)
        done = [job for job in jobs if job["state"] in ("succeeded", "failed")]
        return jobs if len(done) >= count else None

    jobs = wait_for(finished, timeout=60)
    assert jobs, f"{count} deliveries of {tag} did not finish: {deliveries(client, tag)}"
    return list(jobs)


def expected_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_release_is_delivered_signed(user: Client, receiver: WebhookReceiver) -> None:
    webhook = subscribe(user, f"user/{user.username}", receiver.url + "/hook", ["version.released"])

    tag = api_publish(user, user.username)
    [job] = wait_for_deliveries(user, tag)

    assert job["state"] == "succeeded", job
    [request] = receiver.requests
    assert request.headers["X-Atlas-Signature"] == expected_signature(
        webhook["secret"], request.body
    )
    assert request.headers["X-Atlas-Event"] == "version.released"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert body["event"] == "version.released"
    assert body["delivery"] == request.headers["X-Atlas-Delivery"]
    assert str(body["timestamp"]) == request.headers["X-Atlas-Timestamp"]
    assert body["data"]["tag"] == tag
    assert body["data"]["version"] == "1.0.0"
    assert job["result"]["status"] == 200


def test_failing_receiver_is_retried(user: Client, data_rpc: Any) -> None:
    receiver = WebhookReceiver(statuses=(500, 500, 200))
    try:
        tag = empty_box(user)
        subscribe(user, f"box/{tag}", receiver.url, ["provider.uploaded"])

        upload_version(user, tag)
        [job] = wait_for_deliveries(user, tag)
    finally:
        receiver.stop()

    assert job["state"] == "succeeded"
    assert job["attempt"] == 3
    detail = user.get(f"/api/v1/jobs/{job['id']}").json()
    assert [step["to"] for step in detail["history"]] == [
        "queued", "running", "retrying",
        "queued", "running", "retrying",
        "queued", "running", "succeeded",
    ]  # fmt: skip
    errors = [step["error"] for step in detail["history"] if step["to"] == "retrying"]
    assert errors == [f"DeliveryFailed: {receiver.url} responded with HTTP 500"] * 2
    assert len(receiver.requests) == 3
    assert len({request.headers["X-Atlas-Delivery"] for request in receiver.requests}) == 1


def test_box_webhook_hears_only_its_box(user: Client, receiver: WebhookReceiver) -> None:
    watched, other = empty_box(user), empty_box(user)
    subscribe(user, f"box/{watched}", receiver.url, ["provider.uploaded"])

    upload_version(user, other)
    upload_version(user, watched)
    [job] = wait_for_deliveries(user, watched)

    assert job["state"] == "succeeded"
    assert deliveries(user, other) == []
    assert [json.loads(r.body)["data"]["tag"] for r in receiver.requests] == [watched]


def test_finished_job_is_delivered_once(user: Client, receiver: WebhookReceiver) -> None:
    tag = empty_box(user)
    subscribe(user, f"box/{tag}", receiver.url, ["job.finished"])

    upload_version(user, tag)
    [job] = wait_for_deliveries(user, tag)

    # The delivery's own job.finished creates no delivery, so there is one.
    assert job["state"] == "succeeded"
    assert deliveries(user, tag) == [job]
    [request] = receiver.requests
    data = json.loads(request.body)["data"]
    assert data["kind"] == "box.inspect"
    assert data["state"] == "succeeded"


def test_loopback_url_outside_allowlist_is_rejected(user: Client) -> None:
    response = user.post(
        f"/api/v1/user/{user.username}/webhooks",
        json={"url": "http://127.0.0.2:9/hook", "events": ["version.released"]},
    )

    assert_error(
        response,
        422,
        "url is not allowed: address 127.0.0.2 is private, "
        "loopback, link-local, multicast, unspecified or a cloud metadata address; an "
        "operator may allow it with ATLAS_OUTBOUND_ALLOWLIST",
    )
    assert user.get(f"/api/v1/user/{user.username}/webhooks").json() == {"webhooks": []}


def insert_webhooks(database_url: str, rows: str, parameters: dict[str, Any]) -> None:
    """Insert subscriptions past the API's checks.

    ``rows`` is the VALUES or SELECT clause that gives each one's account
    id, URL, events, sealed secret and creation time.
    """
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO webhooks (account_id, url, events, secret_sealed, created_at) "
                    + rows
                ),
                parameters,
            )
    finally:
        engine.dispose()


def test_disallowed_receiver_fails_delivery_permanently(
    user: Client, suite: Suite, database_url: str, data_rpc: Any
) -> None:
    # A host whose DNS answer turned private after the subscription was
    # checked; the row is written directly because the API rejects the URL.
    receiver = WebhookReceiver(host="127.0.0.2")
    tag = empty_box(user)
    account_id = data_rpc.authenticate(user.token)["actor"]["id"]
    sealed = seal(cfg.secret_key(suite.config), "whsec_test")
    try:
        insert_webhooks(
            database_url,
            "VALUES (:account, :url, ARRAY['provider.uploaded'], :sealed, now())",
            {"account": account_id, "url": receiver.url, "sealed": sealed},
        )
        upload_version(user, tag)
        [job] = wait_for_deliveries(user, tag)
    finally:
        receiver.stop()

    assert job["state"] == "failed"
    assert job["attempt"] == 1
    assert job["last_error"] == (
        f"the receiver {receiver.url} is not allowed: address 127.0.0.2 is private, "
        "loopback, link-local, multicast, unspecified or a cloud metadata "
        "address; an operator may allow it with ATLAS_OUTBOUND_ALLOWLIST"
    )
    assert receiver.requests == []


def test_secret_is_stored_sealed(user: Client, suite: Suite, database_url: str) -> None:
    webhook = subscribe(user, f"user/{user.username}", "http://127.0.0.1:9/", ALL_EVENTS)

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                text("SELECT * FROM webhooks WHERE id = :id"), {"id": webhook["id"]}
            ).one()
    finally:
        engine.dispose()

    secret = webhook["secret"]
    assert secret.startswith("whsec_")
    assert secret not in " ".join(str(value) for value in stored)
    assert unseal(cfg.secret_key(suite.config), stored.secret_sealed) == secret


def test_secret_is_shown_only_at_creation(user: Client) -> None:
    created = subscribe(user, f"user/{user.username}", "http://127.0.0.1:9/", ALL_EVENTS)

    listed = user.get(f"/api/v1/user/{user.username}/webhooks")

    assert listed.status_code == 200
    [webhook] = listed.json()["webhooks"]
    assert "secret" not in webhook
    assert webhook == {key: value for key, value in created.items() if key != "secret"}
    assert webhook["events"] == ALL_EVENTS
    assert webhook["box"] is None


def test_webhook_is_deleted(user: Client) -> None:
    tag = empty_box(user)
    webhook = subscribe(user, f"box/{tag}", "http://127.0.0.1:9/", ["version.released"])

    deleted = user.delete(f"/api/v2/box/{tag}/webhooks/{webhook['id']}")
    again = user.delete(f"/api/v2/box/{tag}/webhooks/{webhook['id']}")

    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["id"] == webhook["id"]
    assert user.get(f"/api/v1/box/{tag}/webhooks").json() == {"webhooks": []}
    assert_error(again, 404, f"webhook {webhook['id']} not found")


def test_box_webhooks_are_listed_with_the_account(user: Client) -> None:
    tag = empty_box(user)
    webhook = subscribe(user, f"box/{tag}", "http://127.0.0.1:9/", ["version.released"])

    listed = user.get(f"/api/v1/user/{user.username}/webhooks").json()["webhooks"]

    assert [(entry["id"], entry["box"]) for entry in listed] == [(webhook["id"], tag)]


def test_url_with_credentials_is_rejected(user: Client) -> None:
    for url in ("https://hook:s3cret@127.0.0.1:9/", "https://hook@127.0.0.1:9/"):
        response = user.post(
            f"/api/v1/user/{user.username}/webhooks",
            json={"url": url, "events": ["version.released"]},
        )

        assert_error(
            response,
            422,
            "url: url must not contain a user name or password; receivers verify a "
            "delivery by its X-Atlas-Signature header",
        )
    assert user.get(f"/api/v1/user/{user.username}/webhooks").json() == {"webhooks": []}


def test_unknown_event_is_rejected(user: Client) -> None:
    response = user.post(
        f"/api/v1/user/{user.username}/webhooks",
        json={"url": "http://127.0.0.1:9/", "events": ["box.created"]},
    )

    assert_error(
        response,
        422,
        "events: 'box.created' cannot be subscribed to; use version.released, "
        "version.revoked, provider.uploaded, job.finished",
    )


def test_organization_webhooks_need_owner_or_admin(make_user: Any) -> None:
    owner, admin, member, outsider = (make_user() for _ in range(4))
    organization = create_organization(owner)
    assert set_role(owner, organization, admin.username, "admin").status_code == 200
    assert set_role(owner, organization, member.username, "member").status_code == 200
    path = f"/api/v1/user/{organization}/webhooks"
    body = {"url": "http://127.0.0.1:9/", "events": ["version.released"]}

    by_admin = admin.post(path, json=body)
    by_member = member.post(path, json=body)
    listed_by_member = member.get(path)
    by_outsider = outsider.post(path, json=body)

    assert by_admin.status_code == 201, by_admin.text
    message = f"may not manage the webhooks of {organization!r}"
    assert_error(by_member, 403, message)
    assert_error(listed_by_member, 403, message)
    assert_error(by_outsider, 403, message)
    assert [entry["id"] for entry in owner.get(path).json()["webhooks"]] == [by_admin.json()["id"]]


def test_private_box_webhooks_are_hidden_from_outsiders(user: Client, make_user: Any) -> None:
    tag = api_publish(user, user.username, private=True)
    outsider = make_user()

    response = outsider.get(f"/api/v1/box/{tag}/webhooks")

    assert_error(response, 404, f"box {tag} not found")


def test_anonymous_cannot_list_webhooks(user: Client, anonymous: Client) -> None:
    response = anonymous.get(f"/api/v1/user/{user.username}/webhooks")

    assert_error(response, 401, "authentication required")


def test_deliveries_are_retried_by_owners_and_admins_only(
    make_user: Any, data_rpc: Any, database_url: str
) -> None:
    owner, admin, member = (make_user() for _ in range(3))
    organization = create_organization(owner)
    assert set_role(owner, organization, admin.username, "admin").status_code == 200
    assert set_role(owner, organization, member.username, "member").status_code == 200
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            account_id = connection.execute(
                text("SELECT id FROM accounts WHERE username = :name"), {"name": organization}
            ).scalar_one()
    finally:
        engine.dispose()
    # A delivery of a subscription that does not exist fails at its first attempt.
    job_id = data_rpc.submit_job(
        "webhook.deliver", {"webhook_id": 0}, account_id=account_id, max_attempts=1
    )["id"]
    failed = wait_for(lambda: owner.get(f"/api/v1/jobs/{job_id}").json()["state"] == "failed")

    by_member = member.post(f"/api/v1/jobs/{job_id}/retry")
    by_admin = admin.post(f"/api/v1/jobs/{job_id}/retry")

    assert failed, owner.get(f"/api/v1/jobs/{job_id}").json()
    assert_error(
        by_member,
        403,
        f"user {member.username!r} may not retry webhook.deliver job {job_id}; "
        f"ask an owner or admin of {organization!r}",
    )
    assert by_admin.status_code == 200, by_admin.text


def test_identical_subscription_is_a_conflict(user: Client, receiver: WebhookReceiver) -> None:
    path = f"user/{user.username}"
    first = subscribe(user, path, receiver.url, ["version.released", "job.finished"])

    again = user.post(
        f"/api/v1/{path}/webhooks",
        json={"url": receiver.url, "events": ["job.finished", "version.released"]},
    )
    other_events = user.post(
        f"/api/v1/{path}/webhooks", json={"url": receiver.url, "events": ["job.finished"]}
    )

    assert_error(again, 409, f"webhook {first['id']} already sends these events to this URL")
    assert other_events.status_code == 201, other_events.text


def test_account_webhooks_are_limited(
    user: Client, data_rpc: Any, database_url: str, receiver: WebhookReceiver
) -> None:
    account_id = data_rpc.authenticate(user.token)["actor"]["id"]
    insert_webhooks(
        database_url,
        "SELECT :account, :url || n, ARRAY['job.finished'], 'sealed', now() "
        "FROM generate_series(1, 100) AS n",
        {"account": account_id, "url": receiver.url + "/hook"},
    )

    response = user.post(
        f"/api/v1/user/{user.username}/webhooks",
        json={"url": receiver.url, "events": ["job.finished"]},
    )

    assert_error(
        response,
        422,
        f"{user.username!r} has 100 webhooks, the most an account may have with its boxes; "
        "delete one before adding another",
    )
