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
checks the trigger against the machine, updates the row's fields and returns
the transition for the job's history. An invalid trigger raises ``Conflict``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from transitions import EventData, Machine, MachineError

from services.toolkit import config as cfg
from services.toolkit.errors import Conflict

from .models import JobState, utcnow

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


def source_states(trigger: str) -> list[str]:
    """Return the states that ``trigger`` leaves, in the order of the state machine."""
    states: list[str] = []
    for step in TRANSITIONS:
        sources = step["source"] if isinstance(step["source"], list) else [step["source"]]
        if step["trigger"] == trigger:
            states += [state for state in sources if state not in states]
    return states


def _alternatives(words: list[str]) -> str:
    """Return ``words`` as a list in prose: "a", "a or b", "a, b or c"."""
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def accepted_triggers(state: str, triggers: tuple[str, ...] = PEOPLE_TRIGGERS) -> list[str]:
    """Return those of ``triggers`` that the machine accepts in ``state``."""
    return [trigger for trigger in triggers if state in source_states(trigger)]


@dataclass(frozen=True)
class Policy:
    """Timing of retries and leases, from the configuration."""

    lease: float  # seconds a running job lives without a heartbeat
    backoff_base: float  # seconds before the first retry; doubled for each later one
    backoff_max: float  # seconds, the longest wait between attempts
    max_attempts: int  # attempts a job gets by default, and again on a manual retry

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Policy:
        return cls(
            lease=float(cfg.setting(config, cfg.JOB_LEASE)),
            backoff_base=float(cfg.setting(config, cfg.JOB_BACKOFF_BASE)),
            backoff_max=float(cfg.setting(config, cfg.JOB_BACKOFF_MAX)),
            max_attempts=int(cfg.setting(config, cfg.JOB_MAX_ATTEMPTS)),
        )

    def backoff(self, attempt: int) -> float:
        """Return the seconds to wait after failed attempt ``attempt``, with jitter.

        Full exponential growth, capped, then scaled by a random factor in
        [0.5, 1] so that jobs failing together do not retry together.
        """
        delay = min(self.backoff_max, self.backoff_base * 2 ** max(attempt - 1, 0))
        return delay * random.uniform(0.5, 1.0)


class Lifecycle:
    """The model ``transitions`` drives: a job while a trigger is applied to it.

    The job is a mapped ``Job`` or any object with the same attributes, such
    as the rows that batches of workers' reports lock and write back at once.
    """

    state: str

    def __init__(self, job: Any, policy: Policy) -> None:
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
# Attaching a model to the machine defines its trigger methods, which costs
# far more than a trigger. So one model stays attached and takes each job in
# turn, which is safe because applying a trigger never yields to another
# green thread.
_MODEL = Lifecycle(None, Policy(lease=0, backoff_base=0, backoff_max=0, max_attempts=1))
MACHINE.add_model(_MODEL, initial=JobState.PENDING.value)


def apply(
    job: Any,
    trigger: str,
    policy: Policy,
    *,
    actor: str | None = None,
    error: str | None = None,
    permanent: bool = False,
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply ``trigger`` to ``job`` (a row the caller holds locked).

    Updates the job's fields and returns the transition to record, as the
    columns of a ``job_transitions`` row; raises ``Conflict`` if the trigger
    is not allowed in the job's current state.
    """
    before = JobState(job.state)
    _MODEL.job, _MODEL.policy = job, policy
    MACHINE.set_state(before.value, model=_MODEL)
    try:
        _MODEL.trigger(trigger, actor=actor, permanent=permanent, result=result)
    except MachineError as exc:
        raise Conflict(
            f"job {job.id} is in state {before.value}, and {trigger} applies only to a job "
            f"in state {_alternatives(source_states(trigger))}"
        ) from exc
    finally:
        _MODEL.job = None

    after = JobState(_MODEL.state)
    job.state = after
    if error is not None:
        job.last_error = error
    return {
        "job_id": job.id,
        "from_state": before,
        "to_state": after,
        "trigger": trigger,
        "attempt": job.attempt,
        "actor": actor,
        "error": error,
        "at": utcnow(),
    }
