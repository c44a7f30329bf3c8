"""The jobs pages over plain HTTP: the list, one job, cancel and retry, and who may view them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Client, Suite, unique
from tests.operations import wait_for
from tests.pages import PageVisitor, account_id_of, csrf_from, make_person
from tests.publishing import api_publish, wait_until_inspected

# No worker consumes this kind, so its jobs stay queued until cancelled.
UNCONSUMED = "test.unconsumed"
JOB_LINK = re.compile(r'href="/-/jobs/(\d+)"')


@pytest.fixture
def person(data_rpc: Any) -> str:
    return make_person(data_rpc)


@pytest.fixture
def visitor(suite: Suite, person: str) -> PageVisitor:
    """A browser-like session signed in as ``person``."""
    signed_in = PageVisitor(suite.api_url)
    signed_in.sign_in(person)
    return signed_in


def submit(data_rpc: Any, username: str, kind: str = UNCONSUMED, **options: Any) -> int:
    job = data_rpc.submit_job(
        kind, {"note": "from a test"}, account_id_of(data_rpc, username), **options
    )
    return int(job["id"])


def wait_for_state(data_rpc: Any, job_id: int, state: str) -> dict[str, Any]:
    job = wait_for(lambda: (found := data_rpc.describe_job(job_id))["state"] == state and found)
    assert job, f"job {job_id} is {data_rpc.describe_job(job_id)['state']}, expected {state}"
    return job


def failed_job(data_rpc: Any, username: str) -> int:
    """Return a job that failed permanently, reported through RPC as a worker reports it."""
    job_id = submit(data_rpc, username, max_attempts=1)
    wait_for_state(data_rpc, job_id, "queued")
    assert data_rpc.start_job(job_id, 1, "test-worker")["started"]
    assert data_rpc.fail_job(job_id, 1, "test-worker", "disk full", True) == "failed"
    return job_id


def listed_jobs(html: str) -> list[int]:
    return [int(found) for found in JOB_LINK.findall(html)]


def test_jobs_page_needs_sign_in(suite: Suite) -> None:
    response = PageVisitor(suite.api_url).get("/-/jobs", allow_redirects=False)

    assert response.status_code == 303
    assert response.headers["Location"] == "/-/sign-in?next=%2F-%2Fjobs"


def test_navigation_links_to_jobs(visitor: PageVisitor) -> None:
    assert '<a href="/-/jobs">Jobs</a>' in visitor.get("/").text


def test_jobs_page_lists_own_jobs_only(
    visitor: PageVisitor, person: str, data_rpc: Any, suite: Suite
) -> None:
    job_id = submit(data_rpc, person)
    stranger = PageVisitor(suite.api_url)
    stranger.sign_in(make_person(data_rpc))

    mine = visitor.get("/-/jobs")
    theirs = stranger.get("/-/jobs")

    assert mine.status_code == 200
    assert listed_jobs(mine.text) == [job_id]
    assert UNCONSUMED in mine.text
    assert listed_jobs(theirs.text) == []
    assert "No jobs yet." in theirs.text


def test_jobs_page_filters_by_state_and_kind(
    visitor: PageVisitor, person: str, data_rpc: Any
) -> None:
    done = submit(data_rpc, person, "atlas.noop")
    waiting = submit(data_rpc, person)
    wait_for_state(data_rpc, done, "succeeded")
    wait_for_state(data_rpc, waiting, "queued")

    succeeded = visitor.get("/-/jobs", params={"state": "succeeded", "kind": ""})
    unconsumed = visitor.get("/-/jobs", params={"state": "", "kind": UNCONSUMED})
    nothing = visitor.get("/-/jobs", params={"state": "failed"})

    assert listed_jobs(succeeded.text) == [done]
    assert "<option selected>succeeded</option>" in succeeded.text
    assert listed_jobs(unconsumed.text) == [waiting]
    assert f'value="{UNCONSUMED}"' in unconsumed.text
    assert "No job matches these filters." in nothing.text


def test_jobs_page_with_invalid_state_shows_reason(visitor: PageVisitor) -> None:
    response = visitor.get("/-/jobs", params={"state": "stuck"})

    assert response.status_code == 400
    assert "State &#39;stuck&#39; is not a job state; use one of pending" in response.text


def test_jobs_page_ignores_malformed_cursor(
    visitor: PageVisitor, person: str, data_rpc: Any
) -> None:
    job_id = submit(data_rpc, person)

    for cursor in ("abc", "²", str(2**63), "9" * 5000):
        response = visitor.get("/-/jobs", params={"before": cursor})

        assert response.status_code == 200, cursor
        assert listed_jobs(response.text) == [job_id], cursor


def test_jobs_page_pages_with_before_cursor(
    visitor: PageVisitor, person: str, data_rpc: Any
) -> None:
    job_ids = [submit(data_rpc, person) for _ in range(26)]

    first = visitor.get("/-/jobs", params={"kind": UNCONSUMED})
    older_link = re.search(r'href="(/-/jobs\?[^"]+)" rel="next"', first.text)
    assert older_link, "the first page has no link to older jobs"
    second = visitor.get(older_link.group(1).replace("&amp;", "&"))

    assert listed_jobs(first.text) == sorted(job_ids[1:], reverse=True)
    assert f"before={job_ids[1]}" in older_link.group(1)
    assert "kind=test.unconsumed" in older_link.group(1)
    assert listed_jobs(second.text) == [job_ids[0]]
    assert 'rel="next"' not in second.text
    assert "Newest jobs" in second.text


def test_job_page_shows_history(visitor: PageVisitor, person: str, data_rpc: Any) -> None:
    job_id = submit(data_rpc, person, "atlas.noop")
    wait_for_state(data_rpc, job_id, "succeeded")

    html = visitor.get(f"/-/jobs/{job_id}").text
    history = re.findall(
        r'<span class="badge (\w+)">\1</span> → <span class="badge (\w+)">\2</span>\s*'
        r'<span class="meta">(\w+) · attempt (\d+)',
        html,
    )

    assert f"Job #{job_id}" in html
    assert '<span class="badge succeeded" id="job-state">succeeded</span>' in html
    assert '<dd id="job-attempts">1 / ' in html
    assert "&#34;from a test&#34;" in html
    assert "echo" in html
    assert history == [
        ("pending", "queued", "enqueue", "0"),
        ("queued", "running", "start", "1"),
        ("running", "succeeded", "succeed", "1"),
    ]
    assert "by dispatcher" in html
    assert "Cancel job" not in html
    assert "Retry job" not in html


def test_cancel_button_cancels_queued_job(visitor: PageVisitor, person: str, data_rpc: Any) -> None:
    job_id = submit(data_rpc, person)
    wait_for_state(data_rpc, job_id, "queued")
    page = visitor.get(f"/-/jobs/{job_id}").text

    response = visitor.post(
        f"/-/jobs/{job_id}/cancel", data={"csrf_token": csrf_from(page)}, allow_redirects=False
    )
    after = visitor.get(f"/-/jobs/{job_id}").text

    assert "Cancel job" in page
    assert "Retry job" not in page
    assert response.status_code == 303
    assert response.headers["Location"] == f"/-/jobs/{job_id}"
    assert data_rpc.describe_job(job_id)["state"] == "cancelled"
    assert '<span class="badge cancelled" id="job-state">cancelled</span>' in after
    assert f"by {person}" in after
    assert "Cancel job" not in after


def test_rejected_cancel_shows_reason(visitor: PageVisitor, person: str, data_rpc: Any) -> None:
    job_id = submit(data_rpc, person)
    wait_for_state(data_rpc, job_id, "queued")
    token = csrf_from(visitor.get(f"/-/jobs/{job_id}").text)
    visitor.post(f"/-/jobs/{job_id}/cancel", data={"csrf_token": token})

    response = visitor.post(f"/-/jobs/{job_id}/cancel", data={"csrf_token": token})

    assert response.status_code == 409
    assert (
        f"The job was not cancelled: job {job_id} is in state cancelled, and cancel applies "
        "only to a job in state pending, queued, running or retrying." in response.text
    )
    assert 'id="job-state">cancelled</span>' in response.text


def test_retry_button_queues_failed_job_again(
    visitor: PageVisitor, person: str, data_rpc: Any
) -> None:
    job_id = failed_job(data_rpc, person)
    page = visitor.get(f"/-/jobs/{job_id}").text

    response = visitor.post(
        f"/-/jobs/{job_id}/retry", data={"csrf_token": csrf_from(page)}, allow_redirects=False
    )

    assert '<p class="notice error" id="job-error">disk full</p>' in page
    assert "Retry job" in page
    assert "Cancel job" not in page
    assert response.status_code == 303
    job = data_rpc.describe_job(job_id)
    assert job["state"] in ("pending", "queued")
    assert (job["history"][3]["from"], job["history"][3]["to"]) == ("failed", "pending")
    assert job["history"][3]["by"] == person


def test_job_form_without_csrf_token_rejected(
    visitor: PageVisitor, person: str, data_rpc: Any
) -> None:
    job_id = submit(data_rpc, person)
    wait_for_state(data_rpc, job_id, "queued")

    response = visitor.post(f"/-/jobs/{job_id}/cancel", data={})

    assert response.status_code == 403
    assert "security token is missing or expired" in response.text
    assert data_rpc.describe_job(job_id)["state"] == "queued"


def test_job_of_another_person_is_not_found(person: str, data_rpc: Any, suite: Suite) -> None:
    job_id = submit(data_rpc, person)
    wait_for_state(data_rpc, job_id, "queued")
    stranger = PageVisitor(suite.api_url)
    stranger.sign_in(make_person(data_rpc))
    token = csrf_from(stranger.get("/-/jobs").text)

    page = stranger.get(f"/-/jobs/{job_id}")
    cancel = stranger.post(f"/-/jobs/{job_id}/cancel", data={"csrf_token": token})

    assert page.status_code == 404
    assert f"Job {job_id} not found." in page.text
    assert cancel.status_code == 404
    assert data_rpc.describe_job(job_id)["state"] == "queued"


def test_malformed_job_id_is_not_found(visitor: PageVisitor) -> None:
    for job_id in ("abc", "-1", "²", str(2**63)):
        response = visitor.get(f"/-/jobs/{job_id}")

        assert response.status_code == 404, job_id
        assert response.headers["Content-Type"].startswith("text/html"), job_id
        assert f"Job &#39;{job_id}&#39; not found" in response.text, job_id


def test_organization_jobs_are_listed_for_members(
    visitor: PageVisitor, person: str, data_rpc: Any, suite: Suite
) -> None:
    organization = unique("org")
    data_rpc.create_organization(organization, person)
    member = make_person(data_rpc)
    data_rpc.add_member(organization, member, "member")
    owner = Client(suite.api_url, person, data_rpc.issue_token(person, "test")["token"])
    tag = api_publish(owner, organization)
    [inspection] = wait_until_inspected(owner, tag)
    member_visitor = PageVisitor(suite.api_url)
    member_visitor.sign_in(member)

    html = member_visitor.get("/-/jobs", params={"kind": "box.inspect"}).text
    job_page = member_visitor.get(f"/-/jobs/{inspection['id']}").text

    assert listed_jobs(html) == [inspection["id"]]
    assert f">{tag}</a>" in html
    assert '<span class="badge succeeded" id="job-state">succeeded</span>' in job_page
    assert "verified" in job_page


def test_box_page_links_latest_inspection_for_members(
    visitor: PageVisitor, person: str, data_rpc: Any, suite: Suite
) -> None:
    owner = Client(suite.api_url, person, data_rpc.issue_token(person, "test")["token"])
    tag = api_publish(owner, person)
    [inspection] = wait_until_inspected(owner, tag)
    username, name = tag.split("/")

    mine = visitor.get(f"/{username}/boxes/{name}").text
    anonymous = PageVisitor(suite.api_url).get(f"/{username}/boxes/{name}").text

    assert f'<a href="/-/jobs/{inspection["id"]}">job #{inspection["id"]}</a>' in mine
    assert '<span class="badge verified">verified</span>' in mine
    assert "/-/jobs/" not in anonymous
    assert "Inspection" not in anonymous
