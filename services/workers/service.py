"""The workers service: runs the handlers of every registered job kind.

Start more processes of it to add capacity; they compete for the same
queues. ``ATLAS.jobs.worker_kinds`` limits a process to some kinds.
"""

from __future__ import annotations

from typing import Any

from nameko.dependency_providers import Config

from services.toolkit.operations import ServiceOperations
from services.toolkit.rpc import TimedRpcProxy

from . import kinds  # noqa: F401 - registers the built-in kinds' handlers
from .consumer import consume_jobs
from .execution import run_message


class WorkersService(ServiceOperations):
    name = "workers"

    data = TimedRpcProxy("data")
    config = Config()

    @consume_jobs()
    def run_job(self, message: dict[str, Any]) -> None:
        run_message(self.data, self.config, message)
