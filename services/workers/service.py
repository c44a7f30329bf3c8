"""The worker pool service, ``workers``: one method per job kind.

Each kind consumes its own durable queue with its own pool size
(``ATLAS.job_pools``); several ``workers`` processes may run at once and
share the queues.
"""

from __future__ import annotations

from typing import Any

from nameko.dependency_providers import Config

from services.toolkit.jobs import JobRun, job_kind
from services.toolkit.operations import ServiceOperations
from services.toolkit.rpc import TimedRpcProxy


class WorkersService(ServiceOperations):
    name = "workers"

    data = TimedRpcProxy("data")
    config = Config()

    @job_kind("atlas.noop")
    def noop(self, job: JobRun) -> dict[str, Any]:
        """Do nothing and echo the payload: a probe of the job machinery and its speed."""
        return {"echo": job.payload}
