"""Jobs through every path of their state machine, on the real broker, database and workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import eventlet
import pytest
from kombu import Connection
from sqlalchemy import create_engine, text

from services.toolkit.errors import InvalidTransition, JobNotQueuedYet
from services.toolkit.jobs import job_message, queue_name
from tests.conftest import Client, unique, wait_for
from tests.integration.test_api_boxes import assert_error, create_box
from tests.jobkinds import RECORD, UNSERVED

TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def box(user: Client) -> str:
    return f"{user.username}/{create_box(user)}"


@pytest.fixture(scope="module")
def effects(database_url: str) -> Any:
    engine = create_engine(database_url)

    def count(job_id: int) -> int:
        with engine.connect() as connection:
            return int(
                connection.scalar(
                    text("SELECT count(*) FROM test_job_effects WHERE job_id = :id"),
                    {"id": job_id},
                )
            )

    yield count
    engine.dispose()


def wait_for_state(data_rpc: Any, job_id: int, *states: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = data_rpc.get_any_job(job_id)
        return job if job["state"] in states else None

    job = wait_for(reached)
    assert job is not None, data_rpc.get_any_job(job_id)
    return job


def triggers(job: dict[str, Any]) -> list[str]:
    return [entry["trigger"] for entry in job["history"]]


def test_job_succeeds_and_records_history(data_rpc: Any, box: str, effects: Any) -> None:
    submitted = data_rpc.submit_job(RECORD, {}, box=box)

    job = wait_for_state(data_rpc, submitted["id"], *TERMINAL)

    assert job["state"] == "succeeded"
    assert triggers(job) == ["submit", "enqueue", "start", "succeed"]
    assert [entry["to"] for entry in job["history"]] == [
        "pending",
        "queued",
        "running",
        "succeeded",
    ]
    assert job["history"][2]["by"] == job["worker"]
    assert job["result"]["attempt"] == 1
    assert effects(job["id"]) == 1


def test_failed_attempt_is_retried_then_succeeds(data_rpc: Any, box: str, effects: Any) -> None:
    submitted = data_rpc.submit_job(RECORD, {"fail_times": 1}, box=box)

    job = wait_for_state(data_rpc, submitted["id"], *TERMINAL)

    assert job["state"] == "succeeded"
    assert job["attempt"] == 2
    assert triggers(job) == ["submit", "enqueue", "start", "fail", "enqueue", "start", "succeed"]
    assert job["history"][3]["to"] == "retrying"
    assert job["history"][3]["error"] == "RuntimeError: planned failure of attempt 1"
    assert effects(job["id"]) == 1


def test_permanent_error_fails_without_retry(data_rpc: Any, box: str, effects: Any) -> None:
    submitted = data_rpc.submit_job(RECORD, {"permanent": True}, box=box)

    job = wait_for_state(data_rpc, submitted["id"], *TERMINAL)

    assert job["state"] == "failed"
    assert job["attempt"] == 1
    assert job["last_error"] == "planned permanent failure"
    assert effects(job["id"]) == 0


def test_job_fails_after_max_attempts(data_rpc: Any, box: str, effects: Any) -> None:
    submitted = data_rpc.submit_job(RECORD, {"fail_times": 99}, box=box, max_attempts=2)

    job = wait_for_state(data_rpc, submitted["id"], *TERMINAL)

    assert job["state"] == "failed"
    assert job["attempt"] == 2
    assert [e["to"] for e in job["history"] if e["trigger"] == "fail"] == ["retrying", "failed"]
    assert job["last_error"] == "RuntimeError: planned failure of attempt 2"
    assert effects(job["id"]) == 0


def test_cancel_while_queued(data_rpc: Any, user: Client, box: str) -> None:
    submitted = data_rpc.submit_job(UNSERVED, {}, box=box)
    wait_for_state(data_rpc, submitted["id"], "queued")

    cancelled = user.post(f"/api/v1/jobs/{submitted['id']}/cancel")
    again = user.post(f"/api/v1/jobs/{submitted['id']}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["history"][-1]["by"] == user.username
    assert_error(again, 409, "is cancelled; it cannot cancel")


def test_cancel_while_running_stops_handler(
    data_rpc: Any, user: Client, box: str, effects: Any, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    submitted = data_rpc.submit_job(
        RECORD, {"wait_for_cancel": True, "runs_file": str(runs)}, box=box
    )
    wait_for_state(data_rpc, submitted["id"], "running")

    response = user.post(f"/api/v1/jobs/{submitted['id']}/cancel")
    # The handler notices at its next heartbeat; its report is then refused.
    eventlet.sleep(4 / 3 + 0.5)
    job = data_rpc.get_any_job(submitted["id"])

    assert response.json()["state"] == "cancelled"
    assert job["state"] == "cancelled"
    assert triggers(job)[-1] == "cancel"
    assert effects(job["id"]) == 0
    assert len(runs.read_text().splitlines()) == 1


def test_two_workers_racing_claim_once(data_rpc: Any, suite: Any, box: str) -> None:
    submitted = data_rpc.submit_job(UNSERVED, {}, box=box)
    queued = wait_for_state(data_rpc, submitted["id"], "queued")
    proxies = [suite.rpc() for _ in range(2)]
    clients = [proxy.start().data for proxy in proxies]

    def claim(client: Any, worker: str) -> str:
        try:
            client.start_job(queued["id"], queued["attempt"], worker)
            return "claimed"
        except InvalidTransition:
            return "refused"

    try:
        racers = [eventlet.spawn(claim, c, f"racer-{i}") for i, c in enumerate(clients)]
        outcomes = sorted(racer.wait() for racer in racers)
    finally:
        for proxy in proxies:
            proxy.stop()
    job = data_rpc.get_any_job(queued["id"])

    assert outcomes == ["claimed", "refused"]
    assert triggers(job).count("start") == 1
    assert job["state"] == "running"


def test_redelivered_message_after_success_changes_nothing(
    data_rpc: Any, suite: Any, box: str, effects: Any, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    submitted = data_rpc.submit_job(RECORD, {"runs_file": str(runs)}, box=box)
    done = wait_for_state(data_rpc, submitted["id"], *TERMINAL)

    with Connection(suite.config["AMQP_URI"]) as connection:
        producer = connection.Producer(serializer="json")
        for _ in range(2):
            producer.publish(
                job_message(done["id"], done["attempt"], RECORD),
                routing_key=queue_name(RECORD),
                delivery_mode=2,
            )
    # A later job of the same kind runs after the duplicates were handled.
    marker = data_rpc.submit_job(RECORD, {}, box=box)
    wait_for_state(data_rpc, marker["id"], *TERMINAL)
    after = data_rpc.get_any_job(done["id"])

    assert after["history"] == done["history"]
    assert after["state"] == "succeeded"
    assert effects(done["id"]) == 1
    assert len(runs.read_text().splitlines()) == 1


def test_claim_checks_state_and_attempt(data_rpc: Any, box: str) -> None:
    delayed = data_rpc.submit_job(UNSERVED, {}, box=box, delay=3600)

    with pytest.raises(JobNotQueuedYet):
        data_rpc.start_job(delayed["id"], 1, "tester")
    with pytest.raises(InvalidTransition, match="is pending; it cannot start"):
        data_rpc.start_job(delayed["id"], 5, "tester")
    queued = data_rpc.mark_job_queued(delayed["id"], 1, "tester")
    with pytest.raises(InvalidTransition, match="attempt 1, not 2"):
        data_rpc.start_job(delayed["id"], 2, "tester")
    with pytest.raises(InvalidTransition, match="is queued; it cannot succeed"):
        data_rpc.succeed_job(delayed["id"], 1, "tester", {})
    data_rpc.start_job(delayed["id"], 1, "tester")
    with pytest.raises(InvalidTransition, match="attempt 1, not 0"):
        data_rpc.heartbeat_job(delayed["id"], 0)
    failed = data_rpc.fail_job(delayed["id"], 1, "tester", "broken for good", True)

    assert queued["state"] == "queued"
    assert failed["state"] == "failed"


def test_lease_expiry_takes_job_back(data_rpc: Any, box: str) -> None:
    delayed = data_rpc.submit_job(UNSERVED, {}, box=box, delay=3600, max_attempts=1)
    data_rpc.mark_job_queued(delayed["id"], 1, "tester")
    data_rpc.start_job(delayed["id"], 1, "vanished-worker")

    job = wait_for_state(data_rpc, delayed["id"], "failed")

    assert triggers(job)[-1] == "expire"
    assert "vanished-worker stopped sending heartbeats" in job["last_error"]


def test_retry_of_failed_job_runs_it_again(
    data_rpc: Any, user: Client, box: str, effects: Any
) -> None:
    submitted = data_rpc.submit_job(RECORD, {"fail_times": 1}, box=box, max_attempts=1)
    wait_for_state(data_rpc, submitted["id"], "failed")

    retried = user.post(f"/api/v1/jobs/{submitted['id']}/retry")
    job = wait_for_state(data_rpc, submitted["id"], *TERMINAL)
    again = user.post(f"/api/v1/jobs/{submitted['id']}/retry")

    assert retried.status_code == 200, retried.text
    assert retried.json()["history"][-1]["trigger"] == "retry"
    assert job["state"] == "succeeded"
    assert job["attempt"] == 2
    assert effects(job["id"]) == 1
    assert_error(again, 409, "only a failed job can be retried")


def test_jobs_of_private_box_are_hidden_from_outsiders(
    data_rpc: Any, user: Client, make_user: Any, anonymous: Client
) -> None:
    private = f"{user.username}/{create_box(user, is_private=True)}"
    job = data_rpc.submit_job(UNSERVED, {}, box=private)
    other = make_user()

    own = user.get(f"/api/v1/jobs/{job['id']}")
    listed = user.get("/api/v1/jobs", params={"box": private}).json()["jobs"]
    foreign = other.get(f"/api/v1/jobs/{job['id']}")
    foreign_list = other.get("/api/v1/jobs", params={"kind": UNSERVED}).json()["jobs"]
    foreign_cancel = other.post(f"/api/v1/jobs/{job['id']}/cancel")

    assert own.status_code == 200
    assert [entry["id"] for entry in listed] == [job["id"]]
    assert_error(foreign, 404, f"job {job['id']} not found")
    assert_error(anonymous.get(f"/api/v1/jobs/{job['id']}"), 404, "not found")
    assert job["id"] not in [entry["id"] for entry in foreign_list]
    assert_error(foreign_cancel, 404, "not found")


def test_job_list_filters_and_rejects_bad_input(data_rpc: Any, user: Client, box: str) -> None:
    job = data_rpc.submit_job(UNSERVED, {}, box=box, delay=3600)

    pending = user.get("/api/v1/jobs", params={"box": box, "state": "pending"}).json()["jobs"]
    succeeded = user.get("/api/v1/jobs", params={"box": box, "state": "succeeded"}).json()["jobs"]

    assert [entry["id"] for entry in pending] == [job["id"]]
    assert succeeded == []
    assert_error(user.get("/api/v1/jobs", params={"state": "asleep"}), 400, "state 'asleep'")
    assert_error(user.get("/api/v1/jobs", params={"limit": "1000"}), 400, "limit must be")
    assert_error(user.get("/api/v1/jobs/abc"), 400, "job id 'abc' is invalid")
    assert_error(user.get(f"/api/v1/jobs/{2**70}"), 404, "not found")
    assert_error(user.get("/api/v1/jobs", params={"box": unique("no/box")}), 404, "not found")
