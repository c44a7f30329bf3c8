"""What a successful job changes in the database, applied with its ``succeed`` transition.

A worker reports a result; the kind's outcome turns it into changes of
other rows in the same transaction that marks the job succeeded. The
outcome therefore happens exactly once per job even when a worker dies
after doing the work, or a stale worker reports late: ``succeed`` only
accepts the attempt that currently runs. A kind without an outcome just
stores its result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .database import UnitOfWork
from .models import Job, Provider, ProviderState, utcnow

Outcome = Callable[[UnitOfWork, Job, dict[str, Any]], dict[str, Any]]

OUTCOMES: dict[str, Outcome] = {}


def outcome(kind: str) -> Callable[[Outcome], Outcome]:
    """Register the decorated function as the outcome of ``kind``'s jobs."""

    def register(function: Outcome) -> Outcome:
        OUTCOMES[kind] = function
        return function

    return register


def apply_outcome(unit: UnitOfWork, job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """Apply ``job``'s outcome and return the result to store with it."""
    function = OUTCOMES.get(job.kind)
    return function(unit, job, result) if function is not None else result


@outcome("box.inspect")
def record_inspection(unit: UnitOfWork, job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """Mark the inspected provider verified or rejected, unless its file changed meanwhile."""
    from .boxes import provider_event

    payload = job.payload
    provider = unit.session.get(Provider, payload.get("provider_id"), with_for_update=True)
    if (
        provider is None
        or provider.artifact_sha256 != payload.get("sha256")
        or provider.name != payload.get("provider")
        or provider.architecture != payload.get("architecture")
    ):
        return {
            **result,
            "applied": False,
            "note": "the provider or its file changed after this inspection was submitted",
        }

    verified = result.get("verdict") == "verified"
    provider.state = ProviderState.VERIFIED if verified else ProviderState.REJECTED
    provider.last_error = None if verified else str(result.get("reason") or "rejected")
    provider.updated_at = utcnow()
    unit.emit("provider.verified" if verified else "provider.rejected", provider_event(provider))
    return {**result, "applied": True}
