"""The job state machine, defined once with ``transitions``.

::

    pending ─enqueue─▶ queued ─start─▶ running ─succeed─▶ succeeded
                         ▲                │
                         │              fail / expire
                         │                ▼
                         └──enqueue── retrying      (or failed when no attempt is left
                                                     or the error is permanent)

    cancel: any state that is not terminal ─▶ cancelled
    retry:  failed ─▶ pending, with a fresh allowance of attempts

Callers apply a trigger with :func:`apply` to a job row they hold locked; it
checks the trigger against the machine, updates the row's fields and appends
the transition to the job's history. An invalid trigger raises ``Conflict``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import object_session
from transitions import EventData, Machine, MachineError

from services.toolkit.errors import Conflict

from .models import Job, JobState, JobTransition, utcnow

# States are given to ``transitions`` as plain strings, so that the
# ``on_enter_<state>`` callbacks below match their values.
PENDING, QUEUED, RUNNING, RETRYING = "pending", "queued", "running", "retrying"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
NOT_TERMINAL = [PENDING, QUEUED, RUNNING, RETRYING]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "enqueue", "source": [PENDING, RETRYING], "dest": QUEUED},
    {"trigger": "start", "source": QUEUED, "dest": RUNNING},
    {"trigger": "succeed", "source": RUNNING, "dest": SUCCEEDED},
    # ``fail`` and ``expire`` (a lease that ran out) take the first transition
    # whose conditions hold.
    {
        "trigger": "fail",
        "source": RUNNING,
        "dest": FAILED,
        "conditions": "gives_up",
    },
    {"trigger": "fail", "source": RUNNING, "dest": RETRYING},
    {
        "trigger": "expire",
        "source": RUNNING,
        "dest": FAILED,
        "conditions": "gives_up",
    },
    {"trigger": "expire", "source": RUNNING, "dest": RETRYING},
    {"trigger": "cancel", "source": NOT_TERMINAL, "dest": CANCELLED},
    {"trigger": "retry", "source": FAILED, "dest": PENDING},
]
# Triggers that people apply through the gateway; the dispatcher and workers apply the rest.
PEOPLE_TRIGGERS = ("cancel", "retry")


def accepted_triggers(state: str, triggers: tuple[str, ...] = PEOPLE_TRIGGERS) -> list[str]:
    """Return those of ``triggers`` that the machine accepts in ``state``."""
    accepted = []
    for trigger in triggers:
        for step in TRANSITIONS:
            sources = step["source"] if isinstance(step["source"], list) else [step["source"]]
            if step["trigger"] == trigger and state in sources:
                accepted.append(trigger)
                break
    return accepted


@dataclass(frozen=True)
class Policy:
    """Timing of retries and leases, from the configuration."""

    lease: float  # seconds a running job lives without a heartbeat
    backoff_base: float  # seconds before the first retry; doubled for each later one
    backoff_max: float  # seconds, the longest wait between attempts
    max_attempts: int  # attempts a job gets by default, and again on a manual retry

    def backoff(self, attempt: int) -> float:
        """Return the seconds to wait after failed attempt ``attempt``, with jitter.

        Full exponential growth, capped, then scaled by a random factor in
        [0.5, 1] so that jobs failing together do not retry together.
        """
        delay = min(self.backoff_max, self.backoff_base * 2 ** max(attempt - 1, 0))
        return delay * random.uniform(0.5, 1.0)


class Lifecycle:
    """The model ``transitions`` drives: a job row while a trigger is applied to it."""

    state: str

    def __init__(self, job: Job, policy: Policy) -> None:
        self.job = job
        self.policy = policy

    def gives_up(self, event: EventData) -> bool:
        return bool(event.kwargs.get("permanent")) or self.job.attempt >= self.job.max_attempts

    def on_enter_queued(self, event: EventData) -> None:
        self.job.run_after = None

    def on_enter_running(self, event: EventData) -> None:
        job = self.job
        job.attempt += 1
        job.worker = event.kwargs.get("actor")
        job.lease_expires_at = utcnow() + dt.timedelta(seconds=self.policy.lease)

    def on_enter_retrying(self, event: EventData) -> None:
        job = self.job
        job.run_after = utcnow() + dt.timedelta(seconds=self.policy.backoff(job.attempt))
        job.lease_expires_at = None

    def on_enter_succeeded(self, event: EventData) -> None:
        self.job.result = event.kwargs.get("result")
        self._finish()

    def on_enter_failed(self, event: EventData) -> None:
        self._finish()

    def on_enter_cancelled(self, event: EventData) -> None:
        self._finish()

    def on_enter_pending(self, event: EventData) -> None:
        # A manual retry grants the default number of attempts once more.
        job = self.job
        job.max_attempts = job.attempt + self.policy.max_attempts
        job.finished_at = None
        job.run_after = None

    def _finish(self) -> None:
        self.job.finished_at = utcnow()
        self.job.lease_expires_at = None
        self.job.run_after = None


MACHINE = Machine(
    model=None,
    states=[state.value for state in JobState],
    transitions=TRANSITIONS,
    initial=None,
    auto_transitions=False,
    send_event=True,
)


def apply(
    job: Job,
    trigger: str,
    policy: Policy,
    *,
    actor: str | None = None,
    error: str | None = None,
    permanent: bool = False,
    result: dict[str, Any] | None = None,
) -> JobState:
    """Apply ``trigger`` to ``job`` (a row the caller holds locked) and record it.

    Returns the new state; raises ``Conflict`` if the trigger is not allowed
    in the job's current state.
    """
    before = JobState(job.state)
    lifecycle = Lifecycle(job, policy)
    MACHINE.add_model(lifecycle, initial=before.value)
    try:
        lifecycle.trigger(trigger, actor=actor, permanent=permanent, result=result)
    except MachineError as exc:
        raise Conflict(f"job {job.id} is {before.value}; it cannot {trigger}") from exc
    finally:
        MACHINE.remove_model(lifecycle)

    after = JobState(lifecycle.state)
    job.state = after
    if error is not None:
        job.last_error = error
    # Added through the session, because appending to ``job.history`` would
    # load the whole history first.
    object_session(job).add(  # type: ignore[union-attr]
        JobTransition(
            job_id=job.id,
            from_state=before,
            to_state=after,
            trigger=trigger,
            attempt=job.attempt,
            actor=actor,
            error=error,
            at=utcnow(),
        )
    )
    return after
