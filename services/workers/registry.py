"""Job kinds and their handlers: a handler is a small function registered by name.

::

    @job_kind("box.inspect")
    def inspect_box(job: Job) -> dict:
        ...
        return {"verdict": "verified"}

A handler gets the claimed job and returns a JSON-able result, which the
data service stores (and, for some kinds, applies) with the job's success.
It raises ``PermanentFailure`` for an error that another attempt cannot
fix. Any other exception fails the attempt, and the job is retried with
backoff until it runs out of attempts. Long handlers call
``job.check_cancelled()`` now and then, which raises once the job was
cancelled or taken back, so that they stop early.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """The job cannot succeed however often it is tried; fail it without retrying."""


class JobCancelled(Exception):
    """The job was cancelled, or its lease taken back, while the handler ran."""


class Job:
    """A claimed job, as passed to its handler."""

    def __init__(self, claim: dict[str, Any], config: dict[str, Any], data: Any) -> None:
        self.id: int = claim["id"]
        self.kind: str = claim["kind"]
        self.attempt: int = claim["attempt"]
        self.max_attempts: int = claim["max_attempts"]
        self.payload: dict[str, Any] = claim["payload"]
        self.lease_seconds: float = float(claim["lease_seconds"])
        self.config = config
        # RPC proxy of the data service, for the few kinds that need it.
        self.data = data
        self._cancel_reason: str | None = None

    def cancel(self, reason: str) -> None:
        self._cancel_reason = reason

    @property
    def cancel_reason(self) -> str | None:
        return self._cancel_reason

    def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` if the job was cancelled or taken back meanwhile."""
        if self._cancel_reason is not None:
            raise JobCancelled(self._cancel_reason)


Handler = Callable[[Job], dict[str, Any] | None]

HANDLERS: dict[str, Handler] = {}


def job_kind(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``name``'s jobs."""

    def register(handler: Handler) -> Handler:
        if name in HANDLERS and HANDLERS[name] is not handler:
            raise ValueError(f"job kind {name!r} already has a handler")
        HANDLERS[name] = handler
        return handler

    return register


def handler_for(kind: str) -> Handler | None:
    return HANDLERS.get(kind)
