"""The data service's database connection and its transactional outbox.

``Database`` gives each worker a ``transaction()`` that commits or rolls
back as one unit. Events emitted inside it are written to ``outbox_events``
in the same transaction and published to the broker only after the commit,
so no subscriber hears of a change that was rolled back.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import re
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

import amqp
import eventlet
import kombu
from kombu import Exchange
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import get_event_exchange
from nameko.extensions import DependencyProvider
from sqlalchemy import Table, create_engine, select, update
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker

from services.toolkit import config as cfg
from services.toolkit.batching import Batcher
from services.toolkit.errors import ServiceUnavailable
from services.toolkit.logs import message_headers

from .lifecycle import Policy
from .models import OutboxEvent, utcnow

log = logging.getLogger(__name__)

# Events older than this are assumed orphaned by a crash and republished.
RELAY_AFTER = dt.timedelta(seconds=5)
RELAY_BATCH = 500
# Seconds between the statements that mark published events in the outbox.
MARK_PUBLISHED_INTERVAL = 0.2
# Maximum number of committed transactions whose events are published in one batch.
PUBLISH_BATCH = 50
# Seconds to wait for a broker connection from the pool before giving the events to the relay.
CONNECTION_WAIT = 10.0
# Seconds a pooled database connection may sit unused before a checkout pings it first.
PING_AFTER_IDLE = 0.5


class Event(Protocol):
    """An event to publish: an outbox row, as a transaction wrote it or as the relay reads it."""

    id: int
    event_type: str
    payload: dict[str, Any]


@dataclass
class Emitted:
    """An event that a transaction emits; ``id`` is its outbox row's, set once written."""

    event_type: str
    payload: dict[str, Any]
    id: int = 0


OUTBOX = cast(Table, OutboxEvent.__table__)


def create_data_engine(url: str, pool_size: int) -> Engine:
    """Return the engine of the data service's pool of PostgreSQL connections.

    A checkout pings a connection only if it sat unused for more than
    ``PING_AFTER_IDLE`` seconds. A database that restarted has dropped every
    connection, and a failed ping replaces the whole pool before a
    transaction gets a dead connection. A connection in steady use skips the
    round trip. If the database went away within the last moment, that
    connection's first statement fails instead, and the pool then replaces
    all its connections too.
    """
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=10,
        # Batches of updated rows go out a page of statements per round trip.
        executemany_mode="values_plus_batch",
    )

    @sqlalchemy_event.listens_for(engine, "do_execute")
    def execute_prepared(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        if not context.execution_options.get(PREPARE):
            return False
        name, prepare, execute = _prepared_form(statement)
        # The pool clears a connection's info when it replaces a lost
        # connection, so the set names what this very connection holds.
        prepared = context.root_connection.connection.info.setdefault(PREPARED_KEY, set())
        if name not in prepared:
            cursor.execute(prepare)
            prepared.add(name)
        cursor.execute(execute, parameters)
        return True

    @sqlalchemy_event.listens_for(engine, "checkin")
    def note_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @sqlalchemy_event.listens_for(engine, "checkout")
    def end_autocommit(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        # A read may have left the connection in autocommit (see begin_autocommit).
        if dbapi_connection.autocommit:
            try:
                dbapi_connection.autocommit = False
            except engine.dialect.loaded_dbapi.Error as exc:
                raise DisconnectionError(f"turning off autocommit failed: {exc}") from exc

    @sqlalchemy_event.listens_for(engine, "checkout")
    def ping_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        # A connection opened for this checkout has just connected, so it needs no ping.
        if checked_in_at is None or time.monotonic() - checked_in_at <= PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool replaces this connection and every older one, as the
            # database likely dropped them all, and checks out a new one.
            raise InvalidatePoolError(f"a pooled connection failed its ping: {exc}") from exc

    return engine


# Execution option of a statement that runs as a prepared statement, planned
# once on each connection: ``select(...).execution_options(**{PREPARE: True})``.
# For frequent queries whose planning costs more than their execution, such
# as a box with its versions and providers, a join of four tables whose
# planning took three times as long as running it. Needs direct connections
# to PostgreSQL: a pooler in transaction mode would lose the statements.
PREPARE = "atlas_prepare"
# Key, in a pooled connection's info, of the names of the statements prepared on it.
PREPARED_KEY = "atlas_prepared"
_PARAMETER = re.compile(r"%\((\w+)\)s")


@functools.lru_cache(maxsize=256)
def _prepared_form(statement: str) -> tuple[str, str, str]:
    """Return the name, the PREPARE and the EXECUTE of a statement in psycopg2's pyformat."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    # PREPARE is sent without parameters, so a literal % is no longer doubled.
    body = _PARAMETER.sub(number, statement).replace("%%", "%")
    name = "atlas_" + hashlib.sha256(statement.encode()).hexdigest()[:20]
    arguments = ", ".join(f"%({parameter})s" for parameter in names)
    return name, f"PREPARE {name} AS {body}", f"EXECUTE {name}({arguments})"


def begin_autocommit(session: Session) -> None:
    """Make each statement of ``session`` a transaction of its own, until its connection returns.

    Only psycopg2's flag changes, which sends nothing to PostgreSQL. The
    pool clears it at the connection's next checkout.
    """
    session.connection().connection.driver_connection.autocommit = True


class WriteInReadSession(Exception):
    """A statement other than a query ran in a session meant for reading."""


def read_only(engine: Engine) -> Engine:
    """Make ``engine`` raise on any statement but a query, before it reaches the database.

    Read sessions commit every statement as it runs, so a write there would
    not be rolled back with the rest of a failed request.
    """

    @sqlalchemy_event.listens_for(engine, "before_cursor_execute")
    def reject_writes(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip()[:6].upper().startswith(("SELECT", "WITH", "SHOW")):
            raise WriteInReadSession(
                f"invalid statement in a read session, which allows only queries: {statement[:80]}"
            )

    return engine


@functools.lru_cache(maxsize=64)
def _write_outbox_sql(events: int) -> str:
    """Return the INSERT of ``events`` outbox rows that returns their ids in ascending order.

    PostgreSQL draws each id from the sequence as it inserts the rows of the
    sorted SELECT, so the ids ascend in position order. The tests in
    tests/integration/test_outbox_writes.py check this.
    """
    rows = ", ".join([f"(%s, %s::jsonb, %s::timestamptz, {index})" for index in range(events)])
    return (
        f"INSERT INTO {OUTBOX.name} (event_type, payload, created_at)"
        f" SELECT event_type, payload, created_at FROM (VALUES {rows})"
        " AS pending (event_type, payload, created_at, position)"
        " ORDER BY position RETURNING id"
    )


class UnitOfWork:
    """One database transaction and the events it will publish on commit."""

    def __init__(
        self,
        session: Session,
        policy: Policy,
        on_emit: EmitObserver | None = None,
    ) -> None:
        self.session = session
        self.policy = policy
        self.events: list[Emitted] = []
        self.committed_callbacks: list[Callable[[], None]] = []
        self._on_emit = on_emit
        self._written = 0

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the transaction has committed; never if it rolls back."""
        self.committed_callbacks.append(callback)

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        """Add an event to the outbox and let the observer act on it in this transaction."""
        self.events.append(Emitted(event_type, payload))
        if self._on_emit is not None:
            self._on_emit(self, event_type, payload)

    def write_events(self, ctes: str = "", cte_parameters: Sequence[Any] = ()) -> None:
        """Insert the outbox rows of the events emitted since the last call, in one statement.

        ``ctes`` are data-modifying common table expressions of the caller's
        (``name AS (UPDATE ...), ...``) that run in the same statement, so
        the caller's own write costs no round trip of its own.
        """
        pending = self.events[self._written :]
        prefix = f"WITH {ctes} " if ctes else ""
        if not pending:
            if ctes:
                self.session.connection().exec_driver_sql(
                    prefix + "SELECT 1", tuple(cte_parameters)
                )
            return
        now = utcnow()
        parameters = list(cte_parameters)
        for event in pending:
            parameters += [event.event_type, json.dumps(event.payload), now]
        statement = prefix + _write_outbox_sql(len(pending))
        result = self.session.connection().exec_driver_sql(statement, tuple(parameters))
        ids = sorted(row[0] for row in result)
        for emitted, event_id in zip(pending, ids, strict=True):
            emitted.id = event_id
        self._written = len(self.events)


# Called with the unit, the event type and the payload of every emitted event.
EmitObserver = Callable[[UnitOfWork, str, dict[str, Any]], None]


class DatabaseAccess:
    def __init__(self, provider: Database, worker_ctx: Any = None) -> None:
        self._provider = provider
        self._worker_ctx = worker_ctx

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """Run a block in one transaction and publish its events after commit."""
        session = self._provider.sessionmaker()
        unit = UnitOfWork(session, self._provider.policy, self._provider.on_emit)
        try:
            yield unit
            unit.write_events()
            session.flush()
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            unavailable = unavailable_error(exc)
            if unavailable is not None:
                raise unavailable from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        for callback in unit.committed_callbacks:
            callback()
        if unit.events:
            # The events carry the worker's context, correlation id included,
            # as nameko's own event dispatcher would send it. They are
            # published beside the reply rather than before it, since no
            # caller waits for its own events and the relay covers a failure.
            headers = message_headers(self._worker_ctx) if self._worker_ctx is not None else {}
            self._provider.container.spawn_managed_thread(
                functools.partial(self._provider.publish_events, unit.events, headers)
            )

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Yield a session for queries that change nothing, each its own transaction."""
        session = self._provider.read_sessionmaker()
        try:
            begin_autocommit(session)
            yield session
        except DBAPIError as exc:
            unavailable = unavailable_error(exc)
            if unavailable is not None:
                raise unavailable from exc
            raise
        finally:
            # Each statement committed as it ran; closing returns the connection.
            session.close()

    def relay_outbox(self) -> int:
        return self._provider.relay_outbox()

    def ping(self) -> None:
        with self.read() as session:
            session.execute(select(1))


def unavailable_error(exc: DBAPIError) -> ServiceUnavailable | None:
    """Return the error a caller should get for ``exc`` if trying again may succeed, else None.

    PostgreSQL ends one of two transactions that deadlock, or one that
    conflicts with a concurrent change, and the other goes through, so the
    caller may simply try again. Any other operational error means that the
    database could not be reached or dropped the connection.
    """
    import psycopg2
    from psycopg2.extensions import TransactionRollbackError

    if isinstance(exc.orig, TransactionRollbackError):
        return ServiceUnavailable(
            "the change conflicted with another one made at the same time; try again"
        )
    if exc.connection_invalidated or isinstance(
        exc.orig, (psycopg2.OperationalError, psycopg2.InterfaceError)
    ):
        return ServiceUnavailable("the database is unavailable; try again shortly")
    return None


class Database(DependencyProvider):
    """Engine, sessions and event publishing for the data service."""

    engine: Engine
    sessionmaker: sessionmaker[Session]
    read_sessionmaker: sessionmaker[Session]

    def __init__(self, on_emit: EmitObserver | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_emit = on_emit

    def setup(self) -> None:
        config = self.container.config
        self.policy = Policy.from_config(config)
        self.engine = create_data_engine(
            cfg.database_url(config), pool_size=int(config.get("max_workers", 10))
        )
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)
        # Reads run each statement in its own transaction (begin_autocommit),
        # which saves the round trips of BEGIN and ROLLBACK. At READ
        # COMMITTED, PostgreSQL's default, each statement takes its own
        # snapshot anyway. The reads share the pool, and only their engine
        # rejects writes.
        self.read_sessionmaker = sessionmaker(
            bind=read_only(self.engine.execution_options(logging_token="read")),
            expire_on_commit=False,
        )
        self.exchange: Exchange = get_event_exchange(self.container.service_name, config)
        # Ids of events published but not yet marked so in the outbox.
        self.published: list[int] = []
        # Events of transactions that commit together are published together.
        self.committed: Batcher[tuple[list[Emitted], dict[str, Any]], None] = Batcher(PUBLISH_BATCH)
        self.broker_pool = kombu.Connection(config[AMQP_URI_CONFIG_KEY]).Pool(
            limit=int(config.get("max_workers", 10))
        )
        # Channels of pooled connections that are in AMQP transaction mode.
        self.transactional: weakref.WeakSet[Any] = weakref.WeakSet()

    def start(self) -> None:
        self.container.spawn_managed_thread(self._mark_published_regularly)

    def stop(self) -> None:
        self._mark_published()
        self.engine.dispose()
        self.broker_pool.force_close_all()

    def get_dependency(self, worker_ctx: Any) -> DatabaseAccess:
        return DatabaseAccess(self, worker_ctx)

    def probe_health(self) -> None:
        """Return when a query succeeds; raise ServiceUnavailable if the database fails."""
        DatabaseAccess(self).ping()

    def publish_events(self, events: list[Emitted], headers: dict[str, Any] | None = None) -> None:
        """Publish events just committed, in order, and mark them published.

        The events are the objects the committed transaction wrote, so
        publishing them reads nothing back from the database. The events of
        transactions that commit while a batch is being published go out
        together in the next one.
        """
        # A failure here is not the caller's: the change is committed and the
        # relay publishes the events later.
        try:
            self.committed.submit((events, headers or {}), self._publish_committed)
        except Exception:
            log.warning(
                "publishing %d events failed; the outbox relay will retry",
                len(events),
                exc_info=True,
            )

    def _publish_committed(self, batches: list[tuple[list[Emitted], dict[str, Any]]]) -> list[None]:
        events = [(event, headers) for events, headers in batches for event in events]
        self._publish_in_transaction(events)
        # Marked a moment later, with the events of other batches.
        self.published.extend(event.id for event, _ in events)
        return [None] * len(batches)

    def _mark_published_regularly(self) -> None:
        while True:
            eventlet.sleep(MARK_PUBLISHED_INTERVAL)
            self._mark_published()

    def _mark_published(self) -> None:
        """Mark the events published since the last call as published, in one statement."""
        ids, self.published = self.published, []
        if not ids:
            return
        try:
            with self.sessionmaker() as session:
                session.execute(
                    update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(published_at=utcnow())
                )
                session.commit()
        except Exception as exc:
            # Tried again next time; events still unmarked then would be published twice.
            log.warning("marking %d events published failed: %s", len(ids), exc)
            self.published[:0] = ids

    def relay_outbox(self) -> int:
        """Publish events that were committed but never published; return their count."""
        # NOTE: relayed events go out without the correlation id of the request
        # that caused them, because outbox rows do not store it. A column for
        # the headers would carry it through a crash too.
        with self.sessionmaker() as session:
            events = session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
                .where(OutboxEvent.created_at < utcnow() - RELAY_AFTER)
                .order_by(OutboxEvent.id)
                .limit(RELAY_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if events:
                log.info("relaying %d unpublished events", len(events))
            self._publish(session, [(event, {}) for event in events])
            return len(events)

    def _publish(self, session: Session, events: Sequence[tuple[Event, dict[str, Any]]]) -> None:
        """Publish ``(event, headers)`` pairs in order, then mark the events published."""
        if events:
            self._publish_in_transaction(events)
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([event.id for event, _ in events]))
                .values(published_at=utcnow())
            )
        session.commit()

    def _publish_in_transaction(self, events: Sequence[tuple[Event, dict[str, Any]]]) -> None:
        """Publish several events in one AMQP transaction, which the broker holds on return.

        Publisher confirms would cost a round trip to the broker for each
        event, but ``tx.commit`` costs one for all of them.
        """
        with self.broker_pool.acquire(block=True, timeout=CONNECTION_WAIT) as connection:
            try:
                channel = connection.default_channel
                if channel not in self.transactional:
                    self.exchange(channel).declare()
                    channel.tx_select()
                    self.transactional.add(channel)
                for event, headers in events:
                    message = amqp.Message(
                        json.dumps(event.payload),
                        content_type="application/json",
                        content_encoding="utf-8",
                        delivery_mode=2,
                        application_headers=headers,
                    )
                    channel.basic_publish(
                        message, exchange=self.exchange.name, routing_key=event.event_type
                    )
                channel.tx_commit()
            except BaseException:
                # The channel may be broken or hold part of a transaction, so
                # it is dropped. The pool reconnects on the connection's next use.
                connection.collect()
                raise
