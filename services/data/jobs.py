"""Jobs: submitting them, moving them through their state machine, listing them.

Every change locks the job's row (``SELECT ... FOR UPDATE``) and applies one
trigger of :mod:`.lifecycle` in the caller's transaction, so two workers can
never both start one job and a report from a stale attempt changes nothing.

The dispatcher's and workers' calls come in batches of up to a few hundred
jobs. They lock the rows as plain :class:`JobRow` records in one query and
write the changes, the transitions and the transaction's events back in one
statement, rather than through mapped objects, which would cost a query or
two for each job.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, cast

from psycopg2.extras import Json
from sqlalchemy import Table, func, insert, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, selectinload

from services.toolkit.errors import Conflict, InvalidInput, NotFound
from services.toolkit.metrics import record_job_transition
from services.toolkit.outbound import url_origin

from . import access, lifecycle
from .access import Actor, Level
from .database import UnitOfWork
from .lifecycle import Policy
from .models import (
    TERMINAL_JOB_STATES,
    Account,
    Box,
    Job,
    JobState,
    JobTransition,
    utcnow,
)
from .serialize import timestamp

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")
MAX_KIND_LENGTH = 64
MAX_ERROR_LENGTH = 4000
MAX_PAGE = 100
# Maximum number of jobs that one submit_jobs call creates.
MAX_BATCH = 1000
# A pending job this old was missed by the dispatcher's event and is published by its scan.
PENDING_GRACE = dt.timedelta(seconds=2)
# Loads what a job's description shows of its box in the query that finds the job.
WITH_BOX = (selectinload(Job.box).joinedload(Box.account),)


def submit(
    unit: UnitOfWork,
    kind: str,
    payload: dict[str, Any],
    policy: Policy,
    *,
    account_id: int | None = None,
    box_id: int | None = None,
    max_attempts: int | None = None,
) -> NewJob:
    """Create a pending job in the caller's transaction and announce it to the dispatcher."""
    options = {"account_id": account_id, "box_id": box_id, "max_attempts": max_attempts}
    return submit_many(unit, kind, [payload], policy, **options)[0]


def submit_many(
    unit: UnitOfWork,
    kind: str,
    payloads: list[dict[str, Any]],
    policy: Policy,
    *,
    account_id: int | None = None,
    box_id: int | None = None,
    max_attempts: int | None = None,
) -> list[NewJob]:
    """Create a pending job of ``kind`` for each payload, in order, in the caller's transaction.

    One ``jobs.submitted`` event announces them all to the dispatcher.
    Raises ``InvalidInput`` for a bad kind, payload or option and for a
    batch of more than MAX_BATCH payloads, creating no job.
    """
    if len(kind) > MAX_KIND_LENGTH or not KIND_PATTERN.match(kind):
        raise InvalidInput(f"kind {kind!r} is invalid; use dotted lowercase words like box.inspect")
    if not isinstance(payloads, list) or not 1 <= len(payloads) <= MAX_BATCH:
        raise InvalidInput(f"payloads must be a list of 1 to {MAX_BATCH} JSON objects")
    for index, payload in enumerate(payloads):
        if not isinstance(payload, dict):
            raise InvalidInput(f"payload {index} must be a JSON object")
    if max_attempts is not None and max_attempts < 1:
        raise InvalidInput("max_attempts must be at least 1")

    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "kind": kind,
            "payload": payload,
            "state": JobState.PENDING,
            "attempt": 0,
            "max_attempts": max_attempts or policy.max_attempts,
            "account_id": account_id,
            "box_id": box_id,
            "created_at": now,
            "updated_at": now,
        }
        for payload in payloads
    ]
    # One INSERT for the batch, without the ORM's bookkeeping of each object.
    written = unit.session.connection().execute(INSERT_JOBS, rows).mappings()
    box = unit.session.get(Box, box_id) if box_id is not None else None
    jobs = [NewJob(values, box) for values in written]
    unit.emit(
        "jobs.submitted",
        {
            "schema_version": 1,
            "kind": kind,
            "job_ids": [job.id for job in jobs],
            "box_id": box_id,
            "account_id": account_id,
        },
    )
    return jobs


JOBS = cast(Table, Job.__table__)


def job_event(job: Job) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "job_id": job.id,
        "kind": job.kind,
        "state": job.state.value,
        "attempt": job.attempt,
        "box_id": job.box_id,
        "account_id": job.account_id,
    }


def _locked(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def _announce(unit: UnitOfWork, job: Any, state: JobState) -> None:
    """Emit the event, if any, that announces a job entering ``state``."""
    if state in TERMINAL_JOB_STATES:
        unit.emit("job.finished", job_event(job))
    elif state == JobState.PENDING:
        unit.emit("job.submitted", job_event(job))


def _transition(unit: UnitOfWork, job: Job, trigger: str, policy: Policy, **kwargs: Any) -> None:
    """Apply ``trigger`` to a mapped job and add the transition to the session."""
    step = lifecycle.apply(job, trigger, policy, **kwargs)
    unit.session.add(JobTransition(**step))
    kind, state = job.kind, step["to_state"]
    unit.after_commit(lambda: record_job_transition(kind, state.value))
    _announce(unit, job, state)


class JobRow:
    """The columns of a locked job row, as triggers read and change them."""

    id: int
    kind: str
    payload: dict[str, Any]
    state: JobState
    attempt: int
    max_attempts: int
    run_after: dt.datetime | None
    lease_expires_at: dt.datetime | None
    worker: str | None
    last_error: str | None
    result: dict[str, Any] | None
    finished_at: dt.datetime | None
    account_id: int | None
    box_id: int | None

    __slots__ = tuple(__annotations__)

    def __init__(self, values: Mapping[Any, Any]) -> None:
        for name in JobRow.__slots__:
            setattr(self, name, values[name])
        # A plain query's driver returns the enum's label as a string.
        self.state = JobState(self.state)


class NewJob(JobRow):
    """A job row as :func:`submit_many` wrote it, with what ``job_dict`` reads besides."""

    created_at: dt.datetime
    updated_at: dt.datetime
    box: Box | None

    __slots__ = ("created_at", "updated_at", "box")

    def __init__(self, values: Mapping[Any, Any], box: Box | None) -> None:
        super().__init__(values)
        self.created_at = values["created_at"]
        self.updated_at = values["updated_at"]
        self.box = box


INSERT_JOBS = insert(JOBS).returning(
    *(JOBS.c[name] for name in (*JobRow.__slots__, "created_at", "updated_at")),
    sort_by_parameter_order=True,
)


# The columns a trigger may change, which a batch writes back.
CHANGEABLE = (
    "state",
    "attempt",
    "max_attempts",
    "run_after",
    "lease_expires_at",
    "worker",
    "last_error",
    "result",
    "finished_at",
)
TRANSITIONS = cast(Table, JobTransition.__table__)
# The columns of a job row that a batch writes back, and of a transition that it records.
WRITTEN_COLUMNS = ("id", *CHANGEABLE, "updated_at")
STEP_COLUMNS = ("job_id", "from_state", "to_state", "trigger", "attempt", "actor", "error", "at")


def _with_json_flags(table: Table, names: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """Return each name with whether its column holds JSON, worked out once at import."""
    return tuple((name, isinstance(table.c[name].type, JSONB)) for name in names)


CHANGEABLE_FLAGGED = _with_json_flags(JOBS, CHANGEABLE)
STEP_FLAGGED = _with_json_flags(TRANSITIONS, STEP_COLUMNS)


@functools.lru_cache(maxsize=4)
def _lock_sql(in_states: bool, skip_locked: bool) -> str:
    """Return the query that locks the rows of a list of job ids, in id order.

    It takes the ids, and with ``in_states`` a list of state names, as arrays.
    """
    state_type = JOBS.c.state.type.compile(dialect=postgresql.dialect())
    return (
        f"SELECT {', '.join(JobRow.__slots__)} FROM {JOBS.name} WHERE id = ANY(%s)"
        + (f" AND state = ANY(%s::{state_type}[])" if in_states else "")
        + " ORDER BY id FOR UPDATE"
        + (" SKIP LOCKED" if skip_locked else "")
    )


@functools.lru_cache(maxsize=256)
def _write_back_ctes(rows: int, steps: int) -> str:
    """Return table expressions that write ``rows`` job rows and insert ``steps`` transitions.

    They run in the statement that writes the transaction's events, so
    the whole write costs one round trip. The rows' new values travel in a
    VALUES list whose string literals PostgreSQL reads as text, so each
    value is cast to its column's type.
    """
    dialect = postgresql.dialect()
    assignments = ", ".join(
        f"{name} = changes.{name}::{JOBS.c[name].type.compile(dialect=dialect)}"
        for name in WRITTEN_COLUMNS[1:]
    )
    row_values = ", ".join(["(" + ", ".join(["%s"] * len(WRITTEN_COLUMNS)) + ")"] * rows)
    step_values = ", ".join(["(" + ", ".join(["%s"] * len(STEP_COLUMNS)) + ")"] * steps)
    return (
        f"written AS (UPDATE {JOBS.name} SET {assignments}"
        f" FROM (VALUES {row_values}) AS changes ({', '.join(WRITTEN_COLUMNS)})"
        f" WHERE {JOBS.name}.id = changes.id),"
        f" recorded AS (INSERT INTO {TRANSITIONS.name} ({', '.join(STEP_COLUMNS)})"
        f" VALUES {step_values})"
    )


def _literal(value: Any, is_json: bool) -> Any:
    """Return a column's value as psycopg2 should send it.

    States go as their labels. A JSON column's value goes as JSON whatever
    its Python type, so that a list or a string result is stored as such.
    """
    if isinstance(value, JobState):
        return value.value
    if value is not None and is_json:
        return Json(value)
    return value


class Rows:
    """Job rows that one transaction locks together and writes back together."""

    def __init__(
        self,
        unit: UnitOfWork,
        policy: Policy,
        job_ids: list[int],
        states: list[JobState] | None = None,
        skip_locked: bool = False,
    ) -> None:
        """Lock the rows of ``job_ids`` (in ``states``, if given) in id order.

        Every batch locks in id order, so two batches cannot deadlock. With
        ``skip_locked``, rows that another transaction holds are left out.
        """
        self.unit = unit
        self.policy = policy
        parameters: list[Any] = [sorted(set(job_ids))]
        if states is not None:
            parameters.append([state.value for state in states])
        statement = _lock_sql(states is not None, skip_locked)
        result = unit.session.connection().exec_driver_sql(statement, tuple(parameters))
        self.found = {row.id: row for row in (JobRow(values) for values in result.mappings())}
        self._changed: dict[int, JobRow] = {}
        self._steps: list[dict[str, Any]] = []

    def apply(self, row: JobRow, trigger: str, **kwargs: Any) -> None:
        step = lifecycle.apply(row, trigger, self.policy, **kwargs)
        self._changed[row.id] = row
        self._steps.append(step)
        _announce(self.unit, row, step["to_state"])

    def write(self) -> None:
        """Write the changed rows and their transitions in the unit's transaction."""
        if not self._steps:
            return
        now = utcnow()
        parameters: list[Any] = []
        for row in self._changed.values():
            parameters.append(row.id)
            parameters.extend(
                _literal(getattr(row, name), is_json) for name, is_json in CHANGEABLE_FLAGGED
            )
            parameters.append(now)  # updated_at
        for step in self._steps:
            parameters.extend(_literal(step[name], is_json) for name, is_json in STEP_FLAGGED)
        ctes = _write_back_ctes(len(self._changed), len(self._steps))
        self.unit.write_events(ctes, parameters)
        entered = Counter(
            (self._changed[step["job_id"]].kind, step["to_state"].value) for step in self._steps
        )
        self.unit.after_commit(lambda: _count_transitions(entered))


def _count_transitions(entered: Counter[tuple[str, str]]) -> None:
    for (kind, state), count in entered.items():
        record_job_transition(kind, state, count)


# The dispatcher's side.


def due_jobs(unit: UnitOfWork, policy: Policy, limit: int) -> list[dict[str, Any]]:
    """Return jobs to publish: pending ones the event missed and retrying ones now due.

    Running jobs whose lease ran out are expired first, which makes them
    retrying (due after their backoff) or failed.
    """
    session = unit.session
    now = utcnow()
    expired = session.scalars(
        select(Job)
        .where(Job.state == JobState.RUNNING, Job.lease_expires_at < now)
        .order_by(Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for job in expired:
        _transition(
            unit,
            job,
            "expire",
            policy,
            actor="dispatcher",
            error=f"the lease of attempt {job.attempt} expired; its worker stopped answering",
        )
    session.flush()

    due = session.execute(
        select(Job.id, Job.kind, Job.attempt)
        .where(
            or_(
                (Job.state == JobState.PENDING) & (Job.created_at < now - PENDING_GRACE),
                (Job.state == JobState.RETRYING) & (Job.run_after <= now),
            )
        )
        .order_by(Job.id)
        .limit(limit)
    ).all()
    return [message(job_id, kind, attempt) for job_id, kind, attempt in due]


def message(job_id: int, kind: str, attempt: int) -> dict[str, Any]:
    """Return the queue message that lets a worker start the job's next attempt."""
    return {"job_id": job_id, "kind": kind, "attempt": attempt + 1}


def mark_queued(unit: UnitOfWork, policy: Policy, job_ids: list[int]) -> int:
    """Move the published jobs that are still pending or retrying to queued; return their count."""
    # A row locked by another transaction is skipped rather than waited for:
    # it is most likely a worker whose message overtook this call, and its
    # start records the job queued as well. Should that transaction roll
    # back, the worker's message comes back to it, or the scan publishes the
    # still pending job again.
    rows = Rows(
        unit, policy, job_ids, states=[JobState.PENDING, JobState.RETRYING], skip_locked=True
    )
    for row in rows.found.values():
        rows.apply(row, "enqueue", actor="dispatcher")
    rows.write()
    return len(rows.found)


def queued_messages(session: Session, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Return the messages of queued jobs with ids above ``after_id``, for a rebuild."""
    rows = session.execute(
        select(Job.id, Job.kind, Job.attempt)
        .where(Job.state == JobState.QUEUED, Job.id > after_id)
        .order_by(Job.id)
        .limit(limit)
    ).all()
    return [message(job_id, kind, attempt) for job_id, kind, attempt in rows]


# The workers' side.


def start(
    unit: UnitOfWork, policy: Policy, job_id: int, attempt: int, worker: str
) -> dict[str, Any]:
    """Start attempt ``attempt`` of a queued job for ``worker``.

    Returns ``{"started": True, "job": ...}``, or ``{"started": False}`` for
    a duplicate or stale message, which the worker drops. A message that
    overtook the dispatcher's own bookkeeping finds its job still pending
    or retrying. The message shows that the job was published, so the job
    is recorded as queued here and the dispatcher's call finds it done.
    """
    return start_many(unit, policy, [(job_id, attempt)], worker)[0]


def start_many(
    unit: UnitOfWork, policy: Policy, attempts: list[tuple[int, int]], worker: str
) -> list[dict[str, Any]]:
    """Apply :func:`start` to each ``(job_id, attempt)``; return the outcomes in the same order."""
    return report(unit, policy, [], attempts, worker)["started"]


def report(
    unit: UnitOfWork,
    policy: Policy,
    successes: list[tuple[int, int, dict[str, Any] | None]],
    starts: list[tuple[int, int]],
    worker: str,
) -> dict[str, list[Any]]:
    """Record successful attempts, then start attempts, with their rows locked together.

    ``successes`` are ``(job_id, attempt, result)`` and ``starts`` are
    ``(job_id, attempt)``. Returns ``{"succeeded": [...], "started": [...]}``:
    for each success the job's state afterwards (None for a job that does
    not exist), for each start what :func:`start` returns, in order. A
    second message for one job among the starts finds it running and is
    dropped.
    """
    ids = [job_id for job_id, _, _ in successes] + [job_id for job_id, _ in starts]
    rows = Rows(unit, policy, ids)
    states: list[str | None] = []
    for job_id, attempt, result in successes:
        row = rows.found.get(job_id)
        if row is None:
            states.append(None)
            continue
        if row.state == JobState.RUNNING and row.attempt == attempt:
            rows.apply(row, "succeed", actor=worker, result=result)
        states.append(row.state.value)
    started = [
        _start_row(rows, rows.found.get(job_id), attempt, worker) for job_id, attempt in starts
    ]
    rows.write()
    return {"succeeded": states, "started": started}


def _start_row(rows: Rows, row: JobRow | None, attempt: int, worker: str) -> dict[str, Any]:
    if row is None or row.attempt + 1 != attempt:
        return {"started": False}
    if row.state == JobState.RETRYING and row.run_after is not None and row.run_after > utcnow():
        # Only the scan publishes a retry, once it is due, so this message is not one.
        return {"started": False}
    if row.state in (JobState.PENDING, JobState.RETRYING):
        rows.apply(row, "enqueue", actor="dispatcher")
    if row.state != JobState.QUEUED:
        return {"started": False}
    rows.apply(row, "start", actor=worker)
    work = {"id": row.id, "kind": row.kind, "attempt": row.attempt, "payload": row.payload}
    return {"started": True, "job": work}


def _current_attempt(session: Session, job_id: int, attempt: int) -> Job | None:
    """Return the locked job if ``attempt`` is its running attempt, else None."""
    job = _locked(session, job_id)
    if job.state != JobState.RUNNING or job.attempt != attempt:
        return None
    return job


def heartbeat(unit: UnitOfWork, policy: Policy, job_id: int, attempt: int) -> str:
    """Extend the lease of a running attempt; return the job's state.

    A state other than ``running`` shows the worker that its attempt no
    longer counts, for example because the job was cancelled.
    """
    job = _current_attempt(unit.session, job_id, attempt)
    if job is None:
        return str(unit.session.get(Job, job_id).state.value)  # type: ignore[union-attr]
    job.lease_expires_at = utcnow() + dt.timedelta(seconds=policy.lease)
    return JobState.RUNNING.value


def succeed(
    unit: UnitOfWork,
    policy: Policy,
    job_id: int,
    attempt: int,
    worker: str,
    result: dict[str, Any] | None,
) -> str:
    """Record that attempt ``attempt`` succeeded; return the job's state afterwards.

    A report for an attempt that no longer runs changes nothing, so a worker
    may repeat it safely after a lost reply. Raises ``NotFound`` for a job
    that does not exist.
    """
    state = succeed_many(unit, policy, [(job_id, attempt, result)], worker)[0]
    if state is None:
        raise NotFound(f"job {job_id} not found")
    return state


def succeed_many(
    unit: UnitOfWork,
    policy: Policy,
    outcomes: list[tuple[int, int, dict[str, Any] | None]],
    worker: str,
) -> list[str | None]:
    """Apply :func:`succeed` to each ``(job_id, attempt, result)``; return the states in order.

    A job that no longer exists gets None.
    """
    return report(unit, policy, outcomes, [], worker)["succeeded"]


def fail(
    unit: UnitOfWork,
    policy: Policy,
    job_id: int,
    attempt: int,
    worker: str,
    error: str,
    permanent: bool,
) -> str:
    """Record that attempt ``attempt`` failed; return the job's state afterwards."""
    job = _current_attempt(unit.session, job_id, attempt)
    if job is not None:
        _transition(
            unit,
            job,
            "fail",
            policy,
            actor=worker,
            error=error[:MAX_ERROR_LENGTH],
            permanent=permanent,
        )
    return str(unit.session.get(Job, job_id).state.value)  # type: ignore[union-attr]


# People's side, through the gateway.


def _manageable(session: Session, actor: Actor, job: Job | None, job_id: int) -> Job:
    """Return ``job`` if ``actor`` may see it; a job of another account is not found."""
    if job is None or job.account_id not in access.readable_account_ids(session, actor):
        raise NotFound(f"job {job_id} not found")
    return job


INSPECT_KIND = "box.inspect"

# Kinds whose jobs no user may cancel, with the reason. A box.inspect job
# decides whether an uploaded file is served, so a cancelled one would leave
# the file unverified, and its download refused, for good.
UNCANCELLABLE_KINDS = {
    INSPECT_KIND: "it decides whether the uploaded file is served; "
    "upload another file or delete the provider instead",
}


# Deliveries belong to webhook subscriptions, which only owners and admins
# manage; members with the publish role may cancel or retry other jobs.
MANAGED_KINDS = frozenset({"webhook.deliver"})


def acting_level(kind: str) -> Level:
    """Return the role on a job's account that cancelling or retrying a job of ``kind`` needs."""
    return Level.MANAGE if kind in MANAGED_KINDS else Level.PUBLISH


def user_triggers(kind: str, state: str) -> list[str]:
    """Return the triggers a member may apply to a job of ``kind`` in ``state``."""
    triggers = lifecycle.accepted_triggers(state)
    if kind in UNCANCELLABLE_KINDS:
        triggers = [trigger for trigger in triggers if trigger != "cancel"]
    return triggers


def _check_acting_level(session: Session, actor: Actor, job: Job, action: str) -> None:
    account = session.get(Account, job.account_id)
    needed = acting_level(job.kind)
    if needed == Level.PUBLISH:
        access.check_level(session, actor, account, needed)
    else:
        access.check_level(session, actor, account, needed, f"{action} {job.kind} job {job.id}")


def cancel(unit: UnitOfWork, policy: Policy, actor: Actor, job_id: int) -> dict[str, Any]:
    session = unit.session
    actor = access.require_actor(actor)
    job = _manageable(session, actor, session.get(Job, job_id, with_for_update=True), job_id)
    _check_acting_level(session, actor, job, "cancel")
    reason = UNCANCELLABLE_KINDS.get(job.kind)
    if reason is not None:
        raise Conflict(f"job {job_id} is a {job.kind} job, which cannot be cancelled: {reason}")
    _transition(unit, job, "cancel", policy, actor=actor["username"])
    return job_dict(job)


def retry(unit: UnitOfWork, policy: Policy, actor: Actor, job_id: int) -> dict[str, Any]:
    session = unit.session
    actor = access.require_actor(actor)
    job = _manageable(session, actor, session.get(Job, job_id, with_for_update=True), job_id)
    _check_acting_level(session, actor, job, "retry")
    _transition(unit, job, "retry", policy, actor=actor["username"])
    return job_dict(job)


def describe(session: Session, actor: Actor, job_id: int) -> dict[str, Any]:
    """Return a job the actor may see, with its history; ``actor=None`` is the operator."""
    job = session.scalar(
        select(Job).where(Job.id == job_id).options(selectinload(Job.history), *WITH_BOX)
    )
    if actor is None:
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job_dict(job, with_payload=True, with_history=True)
    job = _manageable(session, actor, job, job_id)
    return shown_to_members(job_dict(job, with_payload=True, with_history=True))


def shown_to_members(described: dict[str, Any]) -> dict[str, Any]:
    """Return a described job with the URL in its payload cut to what members may see."""
    source = described["payload"].get("url")
    if isinstance(source, str):
        described["payload"] = {**described["payload"], "url": shown_url(source)}
    return described


def shown_url(url: str) -> str:
    """Return the scheme, host and port of ``url``, and a mark where the rest was.

    The path, query and user information may carry credentials. Every member
    who may read a job reads its payload, while only the operator gets the
    URL a box is imported from in full.
    """
    origin = url_origin(url)
    return origin if url in (origin, origin + "/") else f"{origin}/[redacted]"


def find(
    session: Session,
    account_ids: list[int] | None,
    *,
    state: str | None = None,
    kind: str | None = None,
    box: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Return a page of jobs, newest first, within ``account_ids`` (None: every job).

    ``before`` is the id of the last job of the previous page.
    """
    query = select(Job).options(*WITH_BOX).order_by(Job.id.desc())
    if account_ids is not None:
        query = query.where(Job.account_id.in_(account_ids))
    if state is not None:
        if state not in {member.value for member in JobState}:
            names = ", ".join(member.value for member in JobState)
            raise InvalidInput(f"state {state!r} is not a job state; use one of {names}")
        query = query.where(Job.state == JobState(state))
    if kind is not None:
        query = query.where(Job.kind == kind)
    if box is not None:
        username, slash, name = box.partition("/")
        if not slash or not username or not name:
            raise InvalidInput(f"box {box!r} is invalid; write it as username/name")
        query = (
            query.join(Box, Box.id == Job.box_id)
            .join(Account, Account.id == Box.account_id)
            .where(func.lower(Account.username) == username.lower())
            .where(func.lower(Box.name) == name.lower())
        )
    if before is not None:
        query = query.where(Job.id < before)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    jobs = session.scalars(query.limit(limit + 1)).all()
    page = [job_dict(job) for job in jobs[:limit]]
    return {"jobs": page, "next_before": page[-1]["id"] if len(jobs) > limit else None}


def counts(session: Session) -> dict[str, int]:
    """Return the number of jobs in each state."""
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    found = {state.value: count for state, count in rows}
    return {member.value: found.get(member.value, 0) for member in JobState}


def counts_by_kind(session: Session) -> list[dict[str, Any]]:
    """Return ``[{"kind", "state", "count"}]`` for every kind and state that has jobs."""
    rows = session.execute(
        select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
    ).all()
    return [{"kind": kind, "state": state.value, "count": count} for kind, state, count in rows]


def job_dict(
    job: Job | NewJob, with_payload: bool = False, with_history: bool = False
) -> dict[str, Any]:
    box = job.box
    result: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "state": job.state.value,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "box": f"{box.account.username}/{box.name}" if box is not None else None,
        "last_error": job.last_error,
        "result": job.result,
        "worker": job.worker,
        "run_after": timestamp(job.run_after),
        "created_at": timestamp(job.created_at),
        "updated_at": timestamp(job.updated_at),
        "finished_at": timestamp(job.finished_at),
    }
    if with_payload:
        result["payload"] = job.payload
    if with_history:
        # A job that submit_many just wrote has no history yet.
        history = job.history if isinstance(job, Job) else []
        result["history"] = [transition_dict(step) for step in history]
    return result


def transition_dict(step: JobTransition) -> dict[str, Any]:
    return {
        "from": step.from_state.value,
        "to": step.to_state.value,
        "trigger": step.trigger,
        "attempt": step.attempt,
        "at": timestamp(step.at),
        "by": step.actor,
        "error": step.error,
    }
