"""Jobs: the state machine, defined once here, and every change of a job's state.

::

    pending ──enqueue──▶ queued ──start──▶ running ──succeed──▶ succeeded
       ▲                   ▲                 │ fail / expire
       │ retry             └──enqueue── retrying ◀─┤ (attempts left, not permanent)
    failed ◀─────────────────────────────────────┘ (otherwise)
    pending, queued, running, retrying ──cancel──▶ cancelled

Each change runs in the caller's transaction on a row locked with
``SELECT ... FOR UPDATE`` and appends one ``job_transitions`` row, so two
workers can never both start a job and the history never misses a step.
``attempt`` grows by one each time the job is queued. A worker's message
names the attempt it carries, and ``start``, ``succeed``, ``fail`` and
``heartbeat`` accept only the current one.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, union
from sqlalchemy.orm import Session
from transitions import Machine, MachineError

from schemas.events import JobEvent
from services.toolkit import config as cfg
from services.toolkit.errors import InvalidInput, InvalidTransition, JobNotQueuedYet, NotFound

from . import access
from .access import Level
from .database import UnitOfWork
from .job_outcomes import apply_outcome
from .models import (
    TERMINAL_JOB_STATES,
    Account,
    Box,
    Job,
    JobState,
    JobTransition,
    Membership,
    utcnow,
)
from .serialize import timestamp

log = logging.getLogger(__name__)

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$")
MAX_ERROR_LENGTH = 4000  # characters of an error message kept in the history
LIST_LIMIT_MAX = 100

# Actors of changes that no user or worker made.
SYSTEM = "data"

S = JobState

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "enqueue", "source": [S.PENDING, S.RETRYING], "dest": S.QUEUED, "after": "queued"},
    {"trigger": "start", "source": S.QUEUED, "dest": S.RUNNING, "after": "started"},
    {"trigger": "succeed", "source": S.RUNNING, "dest": S.SUCCEEDED, "after": "finished"},
    {
        "trigger": "fail",
        "source": S.RUNNING,
        "dest": S.RETRYING,
        "conditions": "has_attempts_left",
        "after": "retry_later",
    },
    {"trigger": "fail", "source": S.RUNNING, "dest": S.FAILED, "after": "finished"},
    {
        "trigger": "expire",
        "source": S.RUNNING,
        "dest": S.RETRYING,
        "conditions": "has_attempts_left",
        "after": "retry_later",
    },
    {"trigger": "expire", "source": S.RUNNING, "dest": S.FAILED, "after": "finished"},
    {
        "trigger": "cancel",
        "source": [S.PENDING, S.QUEUED, S.RUNNING, S.RETRYING],
        "dest": S.CANCELLED,
        "after": "finished",
    },
    {"trigger": "retry", "source": S.FAILED, "dest": S.PENDING, "after": "resubmitted"},
]


class JobPolicy:
    """Lease, attempts and backoff of jobs, read from ``ATLAS.jobs``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.lease = float(cfg.job_setting(config, cfg.JOB_LEASE))

    def max_attempts(self, kind: str) -> int:
        return int(cfg.job_setting(self.config, cfg.JOB_MAX_ATTEMPTS, kind))

    def backoff(self, kind: str, attempt: int) -> float:
        """Return seconds to wait before retrying after ``attempt``: doubling, capped, jittered.

        The jitter spreads retries of jobs that failed together (for example
        while a receiver was down) so they do not all return at once.
        """
        base = float(cfg.job_setting(self.config, cfg.JOB_BACKOFF_BASE, kind))
        cap = float(cfg.job_setting(self.config, cfg.JOB_BACKOFF_MAX, kind))
        delay = min(cap, base * 2 ** max(attempt - 1, 0))
        return delay * random.uniform(0.5, 1.0)


@dataclass
class Change:
    """The model that ``transitions`` drives for one job during one change."""

    job: Job
    policy: JobPolicy
    actor: str
    now: dt.datetime
    error: str | None = None
    permanent: bool = False
    result: dict[str, Any] | None = None
    trigger_name: str = ""

    @property
    def state(self) -> JobState:
        return self.job.state

    @state.setter
    def state(self, value: JobState) -> None:
        self.job.state = value

    def has_attempts_left(self, event: Any) -> bool:
        return not self.permanent and self.job.attempt < self.job.max_attempts

    def queued(self, event: Any) -> None:
        self.job.attempt += 1
        self.job.lease_expires_at = None

    def started(self, event: Any) -> None:
        self.job.worker = self.actor
        self.job.lease_expires_at = self.now + dt.timedelta(seconds=self.policy.lease)

    def retry_later(self, event: Any) -> None:
        delay = self.policy.backoff(self.job.kind, self.job.attempt)
        self.job.run_after = self.now + dt.timedelta(seconds=delay)
        self.job.lease_expires_at = None
        self.job.last_error = self.error

    def finished(self, event: Any) -> None:
        self.job.lease_expires_at = None
        self.job.finished_at = self.now
        if self.error is not None:
            self.job.last_error = self.error
        if self.result is not None:
            self.job.result = self.result

    def resubmitted(self, event: Any) -> None:
        # A manual retry grants the kind's usual number of attempts again.
        self.job.max_attempts = self.job.attempt + self.policy.max_attempts(self.job.kind)
        self.job.run_after = self.now
        self.job.finished_at = None
        self.job.last_error = None


MACHINE = Machine(
    model=None,
    states=JobState,
    transitions=TRANSITIONS,
    initial=None,
    auto_transitions=False,
    send_event=True,
)


def _clip(error: str | None) -> str | None:
    if error is None:
        return None
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 1] + "…"


def apply(
    unit: UnitOfWork,
    job: Job,
    trigger: str,
    actor: str,
    *,
    error: str | None = None,
    permanent: bool = False,
    result: dict[str, Any] | None = None,
) -> Job:
    """Fire ``trigger`` on a locked ``job``, record the history and emit events.

    Raises ``InvalidTransition`` when the job's state has no such transition.
    """
    policy = JobPolicy(unit.config)
    change = Change(job, policy, actor, utcnow(), _clip(error), permanent, result, trigger)
    before = job.state
    MACHINE.add_model(change, initial=before)
    try:
        change.trigger(trigger)  # type: ignore[attr-defined]
    except MachineError as exc:
        raise InvalidTransition(
            f"job {job.id} is {before.value}; it cannot {trigger}"
            + (" (only a failed job can be retried)" if trigger == "retry" else "")
        ) from exc
    finally:
        MACHINE.remove_model(change)

    job.updated_at = change.now
    unit.session.add(
        JobTransition(
            job=job,
            from_state=before,
            to_state=job.state,
            trigger=trigger,
            attempt=job.attempt,
            actor=actor,
            error=change.error,
            at=change.now,
        )
    )
    if job.state == JobState.PENDING:
        unit.emit("job.submitted", job_event(job))
    elif job.state in TERMINAL_JOB_STATES:
        unit.emit("job.finished", job_event(job))
    return job


def job_event(job: Job) -> dict[str, Any]:
    return JobEvent(
        job_id=job.id,
        kind=job.kind,
        state=job.state.value,
        attempt=job.attempt,
        box=_box_tag(job.box),
        account=job.account.username if job.account else None,
        run_after=timestamp(job.run_after),
        error=job.last_error if job.state == JobState.FAILED else None,
    ).model_dump()


def _box_tag(box: Box | None) -> str | None:
    return f"{box.account.username}/{box.name}" if box is not None else None


# Submission


def submit(
    unit: UnitOfWork,
    kind: str,
    payload: dict[str, Any],
    *,
    box: Box | None = None,
    account: Account | None = None,
    max_attempts: int | None = None,
    delay: float | None = None,
    actor: str = SYSTEM,
) -> Job:
    """Create a ``pending`` job in the caller's transaction; its commit emits ``job.submitted``."""
    if not KIND_PATTERN.match(kind) or len(kind) > 64:
        raise InvalidInput(f"job kind {kind!r} is invalid; use dotted lowercase words")
    if not isinstance(payload, dict):
        raise InvalidInput("job payload must be a JSON object")
    policy = JobPolicy(unit.config)
    attempts = max_attempts if max_attempts is not None else policy.max_attempts(kind)
    if attempts < 1:
        raise InvalidInput(f"max_attempts must be at least 1, not {attempts}")
    if delay is not None and delay < 0:
        raise InvalidInput(f"delay must not be negative, not {delay}")

    if account is None and box is not None:
        account = box.account

    now = utcnow()
    job = Job(
        kind=kind,
        payload=payload,
        state=JobState.PENDING,
        attempt=0,
        max_attempts=attempts,
        run_after=now + dt.timedelta(seconds=delay or 0),
        box=box,
        account=account,
        created_at=now,
        updated_at=now,
    )
    unit.session.add(job)
    unit.session.flush()
    unit.session.add(
        JobTransition(
            job=job,
            from_state=None,
            to_state=JobState.PENDING,
            trigger="submit",
            attempt=0,
            actor=actor,
            at=now,
        )
    )
    unit.emit("job.submitted", job_event(job))
    return job


def find_box(session: Session, tag: str) -> Box:
    username, _, name = tag.partition("/")
    account = access.find_account(session, username) if name else None
    box = None
    if account is not None:
        box = session.scalar(
            select(Box).where(Box.account_id == account.id, func.lower(Box.name) == name.lower())
        )
    if box is None:
        raise NotFound(f"box {tag} not found")
    return box


def submit_job(
    unit: UnitOfWork,
    kind: str,
    payload: dict[str, Any],
    box: str | None,
    account: str | None,
    max_attempts: int | None,
    delay: float | None,
) -> dict[str, Any]:
    session = unit.session
    found_box = find_box(session, box) if box else None
    found_account = access.require_account(session, account) if account else None
    job = submit(
        unit,
        kind,
        payload,
        box=found_box,
        account=found_account,
        max_attempts=max_attempts,
        delay=delay,
    )
    return job_dict(job)


# The dispatcher's and the workers' side


def lock(session: Session, job_id: int) -> Job:
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def _check_attempt(job: Job, attempt: int, action: str) -> None:
    if job.attempt != attempt:
        raise InvalidTransition(
            f"job {job.id} is at attempt {job.attempt}, not {attempt}; "
            f"the message to {action} it is stale"
        )


def mark_queued(unit: UnitOfWork, job_id: int, attempt: int, actor: str) -> dict[str, Any]:
    """Record that the message for ``attempt`` was confirmed by the broker."""
    job = lock(unit.session, job_id)
    _check_attempt(job, attempt - 1, "queue")
    apply(unit, job, "enqueue", actor)
    return {"id": job.id, "state": job.state.value, "attempt": job.attempt}


def start(unit: UnitOfWork, job_id: int, attempt: int, worker: str) -> dict[str, Any]:
    """Claim a queued job for ``worker``; succeeds for one message of one attempt only."""
    job = lock(unit.session, job_id)
    if job.state in (JobState.PENDING, JobState.RETRYING) and job.attempt == attempt - 1:
        # The dispatcher publishes before it records the job as queued, and a
        # fast worker can receive the message in between.
        raise JobNotQueuedYet(f"job {job.id} is not recorded as queued yet; try again shortly")
    if job.state != JobState.QUEUED:
        raise InvalidTransition(f"job {job.id} is {job.state.value}; it cannot start")
    _check_attempt(job, attempt, "start")
    apply(unit, job, "start", worker)
    return {
        "id": job.id,
        "kind": job.kind,
        "payload": job.payload,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "lease_seconds": JobPolicy(unit.config).lease,
    }


def _running(session: Session, job_id: int, attempt: int, action: str) -> Job:
    job = lock(session, job_id)
    if job.state != JobState.RUNNING:
        raise InvalidTransition(f"job {job.id} is {job.state.value}; it cannot {action}")
    _check_attempt(job, attempt, action)
    return job


def heartbeat(unit: UnitOfWork, job_id: int, attempt: int) -> dict[str, Any]:
    """Extend the lease of a running attempt; raise ``InvalidTransition`` once it was taken back."""
    job = _running(unit.session, job_id, attempt, "heartbeat")
    job.lease_expires_at = utcnow() + dt.timedelta(seconds=JobPolicy(unit.config).lease)
    return {"id": job.id, "lease_expires_at": timestamp(job.lease_expires_at)}


def succeed(
    unit: UnitOfWork, job_id: int, attempt: int, worker: str, result: dict[str, Any] | None
) -> dict[str, Any]:
    """Record success and apply the kind's outcome in the same transaction."""
    job = _running(unit.session, job_id, attempt, "succeed")
    outcome = apply_outcome(unit, job, result or {})
    apply(unit, job, "succeed", worker, result=outcome)
    return {"id": job.id, "state": job.state.value}


def fail(
    unit: UnitOfWork, job_id: int, attempt: int, worker: str, error: str, permanent: bool
) -> dict[str, Any]:
    job = _running(unit.session, job_id, attempt, "fail")
    apply(unit, job, "fail", worker, error=error, permanent=permanent)
    return {"id": job.id, "state": job.state.value, "run_after": timestamp(job.run_after)}


def expired_job_ids(session: Session, limit: int) -> list[int]:
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.state == JobState.RUNNING, Job.lease_expires_at < utcnow())
            .order_by(Job.lease_expires_at)
            .limit(limit)
        )
    )


def expire(unit: UnitOfWork, job_id: int, actor: str) -> bool:
    """Take back a running job whose lease passed; return whether it had."""
    job = lock(unit.session, job_id)
    if job.state != JobState.RUNNING or job.lease_expires_at is None:
        return False
    if job.lease_expires_at >= utcnow():
        return False
    error = f"lease expired: worker {job.worker} stopped sending heartbeats"
    apply(unit, job, "expire", actor, error=error)
    return True


def dispatchable(session: Session, pending_after: float, limit: int) -> list[dict[str, Any]]:
    """Return jobs to queue: retrying jobs that are due, and pending ones the dispatcher missed.

    A pending job normally reaches the dispatcher through ``job.submitted``.
    One still pending ``pending_after`` seconds after its last change missed
    that event, because the dispatcher was down or the event was lost.
    """
    now = utcnow()
    rows = session.execute(
        select(Job.id, Job.kind, Job.attempt)
        .where(
            or_(
                and_(Job.state == JobState.RETRYING, Job.run_after <= now),
                and_(
                    Job.state == JobState.PENDING,
                    Job.run_after <= now,
                    Job.updated_at < now - dt.timedelta(seconds=pending_after),
                ),
            )
        )
        .order_by(Job.run_after, Job.id)
        .limit(limit)
    )
    return [{"id": row.id, "kind": row.kind, "attempt": row.attempt} for row in rows]


def queued(session: Session, after_id: int, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Job.id, Job.kind, Job.attempt)
        .where(Job.state == JobState.QUEUED, Job.id > after_id)
        .order_by(Job.id)
        .limit(limit)
    )
    return [{"id": row.id, "kind": row.kind, "attempt": row.attempt} for row in rows]


def pending_state(session: Session, job_id: int) -> dict[str, Any]:
    """Return what the dispatcher needs to queue a job it heard of: state, attempt, due time."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state.value,
        "attempt": job.attempt,
        "due": job.run_after <= utcnow(),
    }


# The public API's side


def _member_account_ids(actor: access.Actor) -> Any:
    assert actor is not None
    return union(
        select(Membership.organization_id).where(Membership.user_id == actor["id"]),
        select(Account.id).where(Account.id == actor["id"]),
    )


def _visible(actor: access.Actor) -> Any:
    """SQL condition for jobs ``actor`` may read: those of readable boxes or own accounts."""
    if actor is None:
        return and_(Job.box_id.is_not(None), Box.private.is_(False))
    mine = _member_account_ids(actor)
    return or_(
        and_(Job.box_id.is_not(None), or_(Box.private.is_(False), Box.account_id.in_(mine))),
        and_(Job.box_id.is_(None), Job.account_id.in_(mine)),
    )


def _required_level(session: Session, actor: access.Actor, job: Job, needed: Level) -> None:
    """Raise ``NotFound`` unless ``actor`` may read ``job``, then check ``needed`` on its owner."""
    missing = NotFound(f"job {job.id} not found")
    if job.box is not None:
        owner = job.box.account
        if job.box.private and access.level_on(session, actor, owner) is None:
            raise missing
    elif job.account is not None:
        owner = job.account
        if access.level_on(session, actor, owner) is None:
            raise missing
    else:
        raise missing
    if needed > Level.READ:
        access.check_level(session, actor, owner, needed)


def _job_filters(filters: dict[str, Any]) -> list[Any]:
    conditions: list[Any] = []
    state = filters.get("state")
    if state:
        try:
            conditions.append(Job.state == JobState(state))
        except ValueError as exc:
            states = ", ".join(s.value for s in JobState)
            raise InvalidInput(f"state {state!r} is invalid; use one of {states}") from exc
    if filters.get("kind"):
        conditions.append(Job.kind == filters["kind"])
    if filters.get("webhook_id") is not None:
        conditions.append(Job.kind == "webhook.deliver")
        conditions.append(Job.payload["webhook_id"].as_integer() == int(filters["webhook_id"]))
    if filters.get("before") is not None:
        conditions.append(Job.id < int(filters["before"]))
    return conditions


def _limit(filters: dict[str, Any]) -> int:
    limit = int(filters.get("limit") or 25)
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise InvalidInput(f"limit must be between 1 and {LIST_LIMIT_MAX}, not {limit}")
    return limit


def list_jobs(session: Session, actor: access.Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """Return the newest jobs ``actor`` may read, filtered by state, kind and box."""
    query = select(Job).outerjoin(Box, Job.box_id == Box.id).where(_visible(actor))
    if filters.get("box"):
        box = find_box(session, str(filters["box"]))
        access.require_box(session, actor, box.account.username, box.name)
        query = query.where(Job.box_id == box.id)
    return _page(session, query, filters)


def list_all_jobs(session: Session, filters: dict[str, Any]) -> dict[str, Any]:
    query = select(Job)
    if filters.get("box"):
        query = query.where(Job.box_id == find_box(session, str(filters["box"])).id)
    return _page(session, query, filters)


def _page(session: Session, query: Any, filters: dict[str, Any]) -> dict[str, Any]:
    limit = _limit(filters)
    for condition in _job_filters(filters):
        query = query.where(condition)
    query = query.order_by(Job.id.desc())
    jobs = list(session.scalars(query.limit(limit + 1)))
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return {
        "jobs": [job_dict(job) for job in jobs],
        "next_before": jobs[-1].id if more and jobs else None,
    }


def get_job(session: Session, actor: access.Actor, job_id: int) -> dict[str, Any]:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    _required_level(session, actor, job, Level.READ)
    return job_dict(job, history=True)


def get_any_job(session: Session, job_id: int) -> dict[str, Any]:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job_dict(job, history=True)


def _locked_for_actor(unit: UnitOfWork, actor: access.Actor, job_id: int) -> Job:
    job = lock(unit.session, job_id)
    # Changing a webhook's deliveries takes what changing the webhook takes.
    needed = Level.PUBLISH if job.box is not None else Level.MANAGE
    _required_level(unit.session, actor, job, needed)
    return job


def cancel(unit: UnitOfWork, actor: access.Actor, job_id: int) -> dict[str, Any]:
    job = _locked_for_actor(unit, actor, job_id)
    assert actor is not None
    apply(unit, job, "cancel", actor["username"], error=f"cancelled by {actor['username']}")
    return job_dict(job, history=True)


def cancel_as_operator(unit: UnitOfWork, job_id: int, actor: str) -> dict[str, Any]:
    job = lock(unit.session, job_id)
    apply(unit, job, "cancel", actor, error=f"cancelled by {actor}")
    return job_dict(job, history=True)


def retry(unit: UnitOfWork, actor: access.Actor, job_id: int) -> dict[str, Any]:
    job = _locked_for_actor(unit, actor, job_id)
    assert actor is not None
    apply(unit, job, "retry", actor["username"])
    return job_dict(job, history=True)


def job_dict(job: Job, history: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "state": job.state.value,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "payload": job.payload,
        "result": job.result,
        "last_error": job.last_error,
        "box": _box_tag(job.box),
        "account": job.account.username if job.account else None,
        "worker": job.worker,
        "run_after": timestamp(job.run_after),
        "lease_expires_at": timestamp(job.lease_expires_at),
        "created_at": timestamp(job.created_at),
        "updated_at": timestamp(job.updated_at),
        "finished_at": timestamp(job.finished_at),
    }
    if history:
        result["history"] = [
            {
                "from": entry.from_state.value if entry.from_state else None,
                "to": entry.to_state.value,
                "trigger": entry.trigger,
                "attempt": entry.attempt,
                "at": timestamp(entry.at),
                "by": entry.actor,
                "error": entry.error,
            }
            for entry in job.transitions
        ]
    return result
