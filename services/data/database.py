"""The data service's database connection and its transactional outbox.

``Database`` gives each worker a ``transaction()`` that commits or rolls
back as one unit. Events emitted inside it are written to ``outbox_events``
in the same transaction and published to the broker only after the commit,
so no subscriber hears of a change that was rolled back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kombu import Exchange
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import get_event_exchange
from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from services.toolkit import config as cfg
from services.toolkit.errors import ServiceUnavailable
from services.toolkit.logs import message_headers

from .models import OutboxEvent, utcnow

log = logging.getLogger(__name__)

# Events older than this are assumed orphaned by a crash and republished.
RELAY_AFTER = dt.timedelta(seconds=5)
RELAY_BATCH = 500


class UnitOfWork:
    """One database transaction and the events it will publish on commit."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events: list[OutboxEvent] = []
        self.committed_callbacks: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the transaction has committed; never if it rolls back."""
        self.committed_callbacks.append(callback)

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        event = OutboxEvent(event_type=event_type, payload=payload)
        self.session.add(event)
        self.events.append(event)


class DatabaseAccess:
    def __init__(self, provider: Database, worker_ctx: Any = None) -> None:
        self._provider = provider
        self._worker_ctx = worker_ctx

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """Run a block in one transaction and publish its events after commit."""
        session = self._provider.sessionmaker()
        unit = UnitOfWork(session)
        try:
            yield unit
            session.flush()
            event_ids = [event.id for event in unit.events]
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            if exc.connection_invalidated or isinstance(exc.orig, _operational_errors()):
                raise ServiceUnavailable("the database is unavailable; try again shortly") from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        for callback in unit.committed_callbacks:
            callback()
        if event_ids:
            # The events carry the worker's context, correlation id included,
            # as nameko's own event dispatcher would send it.
            headers = message_headers(self._worker_ctx) if self._worker_ctx is not None else {}
            self._provider.publish_events(event_ids, headers)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Yield a session for queries that change nothing."""
        session = self._provider.sessionmaker()
        try:
            yield session
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc.orig, _operational_errors()):
                raise ServiceUnavailable("the database is unavailable; try again shortly") from exc
            raise
        finally:
            session.rollback()
            session.close()

    def relay_outbox(self) -> int:
        return self._provider.relay_outbox()

    def ping(self) -> None:
        with self.read() as session:
            session.execute(select(1))


def _operational_errors() -> tuple[type[BaseException], ...]:
    import psycopg2

    return (psycopg2.OperationalError, psycopg2.InterfaceError)


class Database(DependencyProvider):
    """Engine, sessions and event publishing for the data service."""

    engine: Engine
    sessionmaker: sessionmaker[Session]

    def setup(self) -> None:
        config = self.container.config
        self.engine = create_engine(
            cfg.database_url(config),
            pool_size=int(config.get("max_workers", 10)),
            max_overflow=10,
            pool_pre_ping=True,
        )
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.exchange: Exchange = get_event_exchange(self.container.service_name, config)
        self.publisher = Publisher(config[AMQP_URI_CONFIG_KEY], serializer="json")

    def stop(self) -> None:
        self.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> DatabaseAccess:
        return DatabaseAccess(self, worker_ctx)

    def probe_health(self) -> None:
        """Return when a query succeeds; raise ServiceUnavailable if the database fails."""
        DatabaseAccess(self).ping()

    def publish_events(self, event_ids: list[int], headers: dict[str, Any] | None = None) -> None:
        # A failure here is not the caller's: the change is committed and the
        # relay publishes the events later.
        try:
            with self.sessionmaker() as session:
                events = session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.id.in_(event_ids))
                    .order_by(OutboxEvent.id)
                ).all()
                self._publish(session, list(events), headers)
        except Exception:
            log.warning(
                "publishing %d events failed; the outbox relay will retry",
                len(event_ids),
                exc_info=True,
            )

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
            self._publish(session, list(events))
            return len(events)

    def _publish(
        self, session: Session, events: list[OutboxEvent], headers: dict[str, Any] | None = None
    ) -> None:
        for event in events:
            self.publisher.publish(
                event.payload,
                exchange=self.exchange,
                routing_key=event.event_type,
                declare=[self.exchange],
                mandatory=False,
                headers=headers or {},
            )
        if events:
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([event.id for event in events]))
                .values(published_at=utcnow())
            )
        session.commit()
