"""The toolkit's job client lets any service submit a job in one call."""

from __future__ import annotations

from typing import Any

from nameko.containers import ServiceContainer
from nameko.rpc import rpc

from services.toolkit.jobs import JobClient
from tests.conftest import Client, service_config, wait_for
from tests.integration.test_api_boxes import create_box
from tests.jobkinds import RECORD


class Mirror:
    name = "test_job_client_mirror"

    jobs = JobClient()

    @rpc
    def record(self, box: str) -> dict[str, Any]:
        return self.jobs.submit(RECORD, {"from": "client"}, box=box)


def test_service_submits_job_with_client(suite: Any, user: Client) -> None:
    box = f"{user.username}/{create_box(user)}"
    container = ServiceContainer(Mirror, service_config(suite.config))
    container.start()
    proxy = suite.rpc()
    try:
        submitted = proxy.start().test_job_client_mirror.record(box)
    finally:
        proxy.stop()
        container.stop()

    def finished() -> dict[str, Any] | None:
        job = user.get(f"/api/v1/jobs/{submitted['id']}").json()
        return job if job["state"] == "succeeded" else None

    job = wait_for(finished)

    assert submitted["state"] == "pending"
    assert submitted["box"] == box
    assert job is not None
    assert job["payload"] == {"from": "client"}
