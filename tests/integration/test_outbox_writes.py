"""The outbox rows of a transaction: written in emit order, alone or with the caller's write."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from services.data.database import UnitOfWork
from services.data.lifecycle import Policy

POLICY = Policy(lease=60, backoff_base=1, backoff_max=60, max_attempts=3)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)
    make_session = sessionmaker(bind=engine)
    with make_session() as opened:
        yield opened
    engine.dispose()


def stored(session: Session, tag: str) -> list[tuple[int, int]]:
    """Return ``(id, n)`` of the outbox rows whose payload carries ``tag``, by id."""
    rows = session.execute(
        text(
            "SELECT id, (payload->>'n')::int FROM outbox_events"
            " WHERE payload->>'tag' = :tag ORDER BY id"
        ),
        {"tag": tag},
    )
    return [(row[0], row[1]) for row in rows]


def test_events_get_ids_in_emit_order(session: Session) -> None:
    tag = uuid.uuid4().hex
    unit = UnitOfWork(session, POLICY)
    for n in range(40):
        unit.emit("test.ordered", {"tag": tag, "n": n})

    unit.write_events()
    session.commit()

    rows = stored(session, tag)
    assert [n for _, n in rows] == list(range(40))
    assert [event.id for event in unit.events] == [event_id for event_id, _ in rows]


def test_events_written_with_callers_expressions(session: Session) -> None:
    tag = uuid.uuid4().hex
    unit = UnitOfWork(session, POLICY)
    unit.emit("test.ordered", {"tag": tag, "n": 0})
    unit.emit("test.ordered", {"tag": tag, "n": 1})
    ctes = (
        "extra AS (INSERT INTO outbox_events (event_type, payload, created_at)"
        " VALUES ('test.extra', %s::jsonb, now()))"
    )

    unit.write_events(ctes, [f'{{"tag": "{tag}", "n": 99}}'])
    session.commit()

    rows = stored(session, tag)
    # The caller's row may come before or after the events' rows.
    assert sorted(n for _, n in rows) == [0, 1, 99]
    assert [event.id for event in unit.events] == [event_id for event_id, n in rows if n != 99]


def test_callers_expressions_run_without_events(session: Session) -> None:
    tag = uuid.uuid4().hex
    unit = UnitOfWork(session, POLICY)
    ctes = (
        "extra AS (INSERT INTO outbox_events (event_type, payload, created_at)"
        " VALUES ('test.extra', %s::jsonb, now()))"
    )

    unit.write_events(ctes, [f'{{"tag": "{tag}", "n": 7}}'])
    session.commit()

    assert [n for _, n in stored(session, tag)] == [7]
    assert unit.events == []
