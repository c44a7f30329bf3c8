"""Jobs through their state machine on the real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import eventlet
import kombu
import pytest
from nameko.containers import ServiceContainer
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import create_engine, text

from services.toolkit.errors import InvalidInput
from services.toolkit.jobs import JobClient, JobQueues, job_queue
from tests.conftest import Client, Suite, service_config
from tests.job_kinds import TestWorkers
from tests.operations import wait_for


@pytest.fixture(scope="module")
def test_workers(suite: Suite) -> Iterator[ServiceContainer]:
    container = ServiceContainer(TestWorkers, service_config(suite.config))
    container.start()
    yield container
    container.stop()


@pytest.fixture
def account_id(user: Client, data_rpc: Any) -> int:
    return int(data_rpc.authenticate(user.token)["actor"]["id"])


def submit(data_rpc: Any, kind: str, payload: dict[str, Any] | None = None, **options: Any) -> int:
    return int(data_rpc.submit_job(kind, payload or {}, **options)["id"])


def wait_for_state(data_rpc: Any, job_id: int, *states: str, timeout: float = 30) -> dict:
    job = wait_for(
        lambda: (found := data_rpc.describe_job(job_id))["state"] in states and found,
        timeout=timeout,
    )
    assert job, f"job {job_id} is {data_rpc.describe_job(job_id)['state']}, expected {states}"
    return job


def path(job: dict[str, Any]) -> list[str]:
    return [step["to"] for step in job["history"]]


def effects(database_url: str, job_id: int) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM test_effects WHERE job_id = :j"), {"j": job_id}
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_noop_job_succeeds(data_rpc: Any) -> None:
    job_id = submit(data_rpc, "atlas.noop", {"n": 1})

    job = wait_for_state(data_rpc, job_id, "succeeded")

    assert path(job) == ["queued", "running", "succeeded"]
    assert job["result"] == {"echo": {"n": 1}}
    assert job["attempt"] == 1
    assert job["finished_at"] is not None


def test_submit_jobs_creates_each_job_in_order(data_rpc: Any) -> None:
    created = data_rpc.submit_jobs("atlas.noop", [{"n": 0}, {"n": 1}, {"n": 2}])

    ids = [job["id"] for job in created]
    assert ids == sorted(ids)
    assert [job["state"] for job in created] == ["pending"] * 3
    results = [wait_for_state(data_rpc, job_id, "succeeded")["result"] for job_id in ids]
    assert results == [{"echo": {"n": 0}}, {"echo": {"n": 1}}, {"echo": {"n": 2}}]


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        ([{"n": 0}, "text"], "payload 1 must be a JSON object"),
        ([], "payloads must be a list of 1 to 1000 JSON objects"),
        ([{}] * 1001, "payloads must be a list of 1 to 1000 JSON objects"),
    ],
)
def test_submit_jobs_rejects_bad_batch_whole(data_rpc: Any, payloads: list, message: str) -> None:
    kind = "test.rejected"

    with pytest.raises(InvalidInput) as raised:
        data_rpc.submit_jobs(kind, payloads)

    assert str(raised.value) == message
    assert data_rpc.find_jobs(kind=kind)["jobs"] == []


def test_start_jobs_starts_duplicate_once(data_rpc: Any) -> None:
    first, second = (job["id"] for job in data_rpc.submit_jobs("test.unconsumed", [{}, {}]))
    wait_for_state(data_rpc, first, "queued")
    wait_for_state(data_rpc, second, "queued")

    outcomes = data_rpc.start_jobs(
        [
            {"job_id": second, "attempt": 1},
            {"job_id": first, "attempt": 1},
            {"job_id": second, "attempt": 1},
            {"job_id": first, "attempt": 2},
        ],
        "batch-worker",
    )

    assert [outcome["started"] for outcome in outcomes] == [True, True, False, False]
    assert outcomes[0]["job"]["id"] == second
    assert outcomes[1]["job"]["id"] == first
    assert data_rpc.describe_job(first)["worker"] == "batch-worker"


def test_job_batches_reject_malformed_items(data_rpc: Any) -> None:
    with pytest.raises(InvalidInput) as started:
        data_rpc.start_jobs([{"job_id": 1}], "batch-worker")
    with pytest.raises(InvalidInput) as succeeded:
        data_rpc.succeed_jobs(["job 1"], "batch-worker")

    assert str(started.value) == (
        'attempts must be a list of {"job_id", "attempt"} objects with whole numbers'
    )
    assert str(succeeded.value) == (
        'outcomes must be a list of {"job_id", "attempt", "result"} objects'
    )


def test_succeed_jobs_returns_each_state(data_rpc: Any) -> None:
    first, second = (job["id"] for job in data_rpc.submit_jobs("test.unconsumed", [{}, {}]))
    wait_for_state(data_rpc, second, "queued")
    wait_for_state(data_rpc, first, "queued")
    data_rpc.start_jobs(
        [{"job_id": first, "attempt": 1}, {"job_id": second, "attempt": 1}], "batch-worker"
    )

    states = data_rpc.succeed_jobs(
        [
            {"job_id": first, "attempt": 1, "result": {"done": True}},
            {"job_id": second, "attempt": 2, "result": None},
            {"job_id": second + 1_000_000, "attempt": 1},
        ],
        "batch-worker",
    )

    assert states == ["succeeded", "running", None]
    assert data_rpc.describe_job(first)["result"] == {"done": True}
    assert data_rpc.describe_job(second)["state"] == "running"


def test_report_jobs_succeeds_and_starts_in_one_call(data_rpc: Any) -> None:
    first, second = (job["id"] for job in data_rpc.submit_jobs("test.unconsumed", [{}, {"n": 2}]))
    wait_for_state(data_rpc, first, "queued")
    wait_for_state(data_rpc, second, "queued")
    data_rpc.start_jobs([{"job_id": first, "attempt": 1}], "batch-worker")

    reply = data_rpc.report_jobs(
        [{"job_id": first, "attempt": 1, "result": {"done": True}}],
        [{"job_id": second, "attempt": 1}, {"job_id": first, "attempt": 2}],
        "batch-worker",
    )

    assert reply["succeeded"] == ["succeeded"]
    assert [outcome["started"] for outcome in reply["started"]] == [True, False]
    assert reply["started"][0]["job"] == {
        "id": second, "kind": "test.unconsumed", "attempt": 1, "payload": {"n": 2}
    }  # fmt: skip
    assert path(data_rpc.describe_job(first)) == ["queued", "running", "succeeded"]
    assert path(data_rpc.describe_job(second)) == ["queued", "running"]


@pytest.mark.parametrize(
    "results",
    [
        [["a", 1], [], "ok", '{"a": 1}', 7, True, None, {"nested": {"list": [1, 2]}}],
    ],
)
def test_report_jobs_stores_any_json_result(data_rpc: Any, results: list[Any]) -> None:
    jobs = data_rpc.submit_jobs("test.unconsumed", [{"n": n} for n in range(len(results))])
    ids = [job["id"] for job in jobs]
    for job_id in ids:
        wait_for_state(data_rpc, job_id, "queued")
    data_rpc.start_jobs([{"job_id": job_id, "attempt": 1} for job_id in ids], "json-worker")

    outcomes = [
        {"job_id": job_id, "attempt": 1, "result": result}
        for job_id, result in zip(ids, results, strict=True)
    ]
    reply = data_rpc.report_jobs(outcomes, [], "json-worker")

    assert reply["succeeded"] == ["succeeded"] * len(ids)
    stored = [data_rpc.describe_job(job_id)["result"] for job_id in ids]
    assert stored == results


def test_report_jobs_rejects_malformed_items_whole(data_rpc: Any) -> None:
    job_id = data_rpc.submit_jobs("test.unconsumed", [{}])[0]["id"]
    wait_for_state(data_rpc, job_id, "queued")

    with pytest.raises(InvalidInput):
        data_rpc.report_jobs([], [{"job_id": job_id, "attempt": 1}, {"job": 2}], "batch-worker")

    assert data_rpc.describe_job(job_id)["state"] == "queued"


def test_failing_attempts_retry_then_succeed(data_rpc: Any, test_workers: Any) -> None:
    job_id = submit(data_rpc, "test.flaky", {"succeed_on": 3}, max_attempts=5)

    job = wait_for_state(data_rpc, job_id, "succeeded")

    assert path(job) == [
        "queued", "running", "retrying",
        "queued", "running", "retrying",
        "queued", "running", "succeeded",
    ]  # fmt: skip
    assert job["attempt"] == 3
    assert "attempt 2 fails on purpose" in job["history"][5]["error"]


def test_permanent_error_fails_without_retry(data_rpc: Any, test_workers: Any) -> None:
    job_id = submit(data_rpc, "test.permanent", max_attempts=5)

    job = wait_for_state(data_rpc, job_id, "failed")

    assert path(job) == ["queued", "running", "failed"]
    assert job["last_error"] == "this job can never succeed"


def test_job_fails_after_max_attempts(data_rpc: Any, test_workers: Any) -> None:
    job_id = submit(data_rpc, "test.flaky", {"succeed_on": 10}, max_attempts=2)

    job = wait_for_state(data_rpc, job_id, "failed")

    assert path(job) == ["queued", "running", "retrying", "queued", "running", "failed"]
    assert job["attempt"] == 2


def test_queued_job_is_cancelled(user: Client, account_id: int, data_rpc: Any) -> None:
    # No worker consumes this kind, so the job stays queued.
    job_id = submit(data_rpc, "test.unconsumed", account_id=account_id)
    wait_for_state(data_rpc, job_id, "queued")

    response = user.post(f"/api/v1/jobs/{job_id}/cancel")

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    assert path(data_rpc.describe_job(job_id)) == ["queued", "cancelled"]


def test_running_job_is_cancelled(
    user: Client, account_id: int, data_rpc: Any, test_workers: Any
) -> None:
    job_id = submit(data_rpc, "test.slow", {"seconds": 60}, account_id=account_id)
    wait_for_state(data_rpc, job_id, "running")

    response = user.post(f"/api/v1/jobs/{job_id}/cancel")

    assert response.status_code == 200, response.text
    # The worker's heartbeat finds the attempt abandoned; its late report changes nothing.
    eventlet.sleep(3)
    job = data_rpc.describe_job(job_id)
    assert job["state"] == "cancelled"
    assert path(job) == ["queued", "running", "cancelled"]


def test_cancelling_a_finished_job_is_a_conflict(
    user: Client, account_id: int, data_rpc: Any
) -> None:
    job_id = submit(data_rpc, "atlas.noop", account_id=account_id)
    wait_for_state(data_rpc, job_id, "succeeded")

    response = user.post(f"/api/v1/jobs/{job_id}/cancel")

    assert response.status_code == 409
    assert response.json() == {
        "errors": [
            f"job {job_id} is in state succeeded, and cancel applies only to a job "
            "in state pending, queued, running or retrying"
        ],
        "success": False,
    }


def test_inspect_job_cannot_be_cancelled(user: Client, account_id: int, data_rpc: Any) -> None:
    job_id = submit(data_rpc, "box.inspect", {}, account_id=account_id, max_attempts=1)

    response = user.post(f"/api/v1/jobs/{job_id}/cancel")

    assert response.status_code == 409
    assert "which cannot be cancelled" in response.json()["errors"][0]
    assert data_rpc.describe_job(job_id)["state"] != "cancelled"


def test_failed_job_is_retried_through_the_api(
    user: Client, account_id: int, data_rpc: Any, test_workers: Any
) -> None:
    job_id = submit(
        data_rpc, "test.flaky", {"succeed_on": 3}, account_id=account_id, max_attempts=2
    )
    wait_for_state(data_rpc, job_id, "failed")

    response = user.post(f"/api/v1/jobs/{job_id}/retry")

    assert response.status_code == 200, response.text
    job = wait_for_state(data_rpc, job_id, "succeeded")
    assert job["attempt"] == 3
    assert path(job)[-4:] == ["pending", "queued", "running", "succeeded"]


def test_two_workers_racing_start_one_job(data_rpc: Any, suite: Suite) -> None:
    job_id = submit(data_rpc, "test.unconsumed")
    wait_for_state(data_rpc, job_id, "queued")
    # A standalone proxy serves one caller at a time, so each racer gets its own.
    proxies = [suite.rpc() for _ in range(8)]
    racers = [proxy.start().data for proxy in proxies]

    pool = eventlet.GreenPool(len(racers))
    outcomes = list(
        pool.imap(
            lambda numbered: numbered[1].start_job(job_id, 1, f"racer-{numbered[0]}"),
            enumerate(racers),
        )
    )
    for proxy in proxies:
        proxy.stop()

    assert sum(outcome["started"] for outcome in outcomes) == 1
    assert data_rpc.describe_job(job_id)["state"] == "running"


def test_redelivered_message_after_success_changes_nothing(
    data_rpc: Any, suite: Suite, test_workers: Any, database_url: str
) -> None:
    job_id = submit(data_rpc, "test.effect")
    before = wait_for_state(data_rpc, job_id, "succeeded")

    JobQueues(suite.config["AMQP_URI"]).publish(
        {"job_id": job_id, "kind": "test.effect", "attempt": 1}
    )
    eventlet.sleep(1)

    assert data_rpc.start_job(job_id, 1, "late-worker") == {"started": False}
    assert data_rpc.describe_job(job_id)["history"] == before["history"]
    assert effects(database_url, job_id) == 1


def test_job_list_filters_by_state_and_kind(user: Client, account_id: int, data_rpc: Any) -> None:
    done = submit(data_rpc, "atlas.noop", account_id=account_id)
    waiting = submit(data_rpc, "test.unconsumed", account_id=account_id)
    wait_for_state(data_rpc, done, "succeeded")
    wait_for_state(data_rpc, waiting, "queued")

    succeeded = user.get("/api/v1/jobs", params={"state": "succeeded"}).json()["jobs"]
    unconsumed = user.get("/api/v1/jobs", params={"kind": "test.unconsumed"}).json()["jobs"]

    assert [job["id"] for job in succeeded] == [done]
    assert [job["id"] for job in unconsumed] == [waiting]


def test_job_shows_its_history(user: Client, account_id: int, data_rpc: Any) -> None:
    job_id = submit(data_rpc, "atlas.noop", account_id=account_id)
    wait_for_state(data_rpc, job_id, "succeeded")

    job = user.get(f"/api/v1/jobs/{job_id}").json()

    assert [(step["from"], step["to"], step["trigger"]) for step in job["history"]] == [
        ("pending", "queued", "enqueue"),
        ("queued", "running", "start"),
        ("running", "succeeded", "succeed"),
    ]
    assert job["history"][0]["by"] == "dispatcher"


def test_jobs_of_other_accounts_are_not_found(
    make_user: Any, account_id: int, data_rpc: Any
) -> None:
    job_id = submit(data_rpc, "atlas.noop", account_id=account_id)
    outsider = make_user()

    assert outsider.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert outsider.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404
    assert outsider.get("/api/v1/jobs").json()["jobs"] == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"state": "done"}, "state 'done' is not a job state"),
        ({"limit": "x"}, "limit must be a whole number of at most 18 digits, not 'x'"),
        ({"before": "²"}, "before must be a whole number of at most 18 digits, not '²'"),
        ({"limit": "1000"}, "limit must be between 1 and 100"),
        ({"box": "nobody"}, "box 'nobody' is invalid; write it as username/name"),
        ({"colour": "red"}, "unknown query parameter 'colour'"),
    ],
)
def test_job_list_rejects_bad_filters(user: Client, query: dict, message: str) -> None:
    response = user.get("/api/v1/jobs", params=query)

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert message in response.json()["errors"][0]


def test_jobs_need_authentication(anonymous: Client) -> None:
    assert anonymous.get("/api/v1/jobs").status_code == 401
    assert anonymous.post("/api/v1/jobs/1/cancel").status_code == 401


def run_cli(suite: Suite, *argv: str) -> int:
    from services.cli.main import build_parser

    args = build_parser().parse_args(list(argv))
    return int(args.func(suite.config, args))


def test_atlas_jobs_list_and_show(
    suite: Suite, data_rpc: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = submit(data_rpc, "atlas.noop", {"note": "from the CLI test"})
    result = wait_for_state(data_rpc, job_id, "succeeded")["result"]

    assert run_cli(suite, "jobs", "list", "--kind", "atlas.noop") == 0
    listing = capsys.readouterr().out
    assert run_cli(suite, "jobs", "show", str(job_id)) == 0
    shown = capsys.readouterr().out

    assert listing.splitlines()[0].split() == ["ID", "KIND", "STATE", "ATTEMPTS", "BOX", "UPDATED"]
    assert f"{job_id}  atlas.noop  succeeded  1/5" in listing
    assert f"job {job_id}: atlas.noop is succeeded" in shown
    assert "queued -> running" in shown
    assert f"result: {json.dumps(result, sort_keys=True)}" in shown


def queue_depth(suite: Suite, kind: str) -> int:
    with kombu.Connection(suite.config["AMQP_URI"]) as connection:
        queue = job_queue(kind)(connection.default_channel)
        return int(queue.queue_declare(passive=True).message_count)


def test_rebuild_restores_a_deleted_queue(
    suite: Suite, data_rpc: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    kind = "test.rebuilt"
    job_ids = [submit(data_rpc, kind) for _ in range(5)]
    for job_id in job_ids:
        wait_for_state(data_rpc, job_id, "queued")
    JobQueues(suite.config["AMQP_URI"]).delete_queue(kind)

    assert run_cli(suite, "jobs", "rebuild") == 0

    assert "republished" in capsys.readouterr().out
    assert queue_depth(suite, kind) == 5
    # Each message still starts its job exactly once.
    assert data_rpc.start_job(job_ids[0], 1, "worker-a")["started"] is True
    assert data_rpc.start_job(job_ids[0], 1, "worker-b")["started"] is False


class Submitting:
    """A service that submits jobs with the toolkit's job client, as any service would."""

    name = "test_submitting"

    jobs = JobClient()

    @rpc
    def submit_noop(self, payload: dict[str, Any]) -> int:
        return int(self.jobs.submit("atlas.noop", payload)["id"])


def test_job_client_submits_from_a_service(suite: Suite, data_rpc: Any) -> None:
    container = ServiceContainer(Submitting, service_config(suite.config))
    container.start()
    try:
        with ServiceRpcProxy("test_submitting", suite.config) as submitting:
            job_id = submitting.submit_noop({"from": "a service"})
    finally:
        container.stop()

    job = wait_for_state(data_rpc, job_id, "succeeded")
    assert job["result"] == {"echo": {"from": "a service"}}
