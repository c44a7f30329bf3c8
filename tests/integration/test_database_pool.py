"""The data service's pool of PostgreSQL connections: which checkouts ping, and recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from services.data import database
from services.data.database import PING_AFTER_IDLE, create_data_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_data_engine(database_url, pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def terminate(database_url: str) -> Iterator[object]:
    admin = create_engine(database_url)

    def terminate(pid: int) -> None:
        """End the server process of ``pid``, as a database restart would, and wait for it."""
        with admin.connect() as connection:
            ended = connection.execute(
                text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
            )
            assert ended.scalar_one() is True

    yield terminate
    admin.dispose()


def backend_pid(connection: Connection) -> int:
    return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def end_pooled_connection(engine: Engine, terminate) -> int:
    """Use a connection of ``engine``'s pool, end its server process, and return its pid."""
    with engine.connect() as connection:
        pid = backend_pid(connection)
    terminate(pid)
    return pid


def test_idle_connection_is_pinged_and_replaced(engine: Engine, terminate) -> None:
    dead = end_pooled_connection(engine, terminate)
    time.sleep(PING_AFTER_IDLE + 0.2)

    # The ping found the connection dead, so the transaction got a new one.
    with engine.connect() as connection:
        assert backend_pid(connection) != dead


def test_busy_connection_skips_ping(
    engine: Engine, terminate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_AFTER_IDLE", 30.0)
    dead = end_pooled_connection(engine, terminate)

    # Checked out again at once, the connection is not pinged, so its first
    # statement meets the closed connection.
    with pytest.raises(OperationalError), engine.connect() as connection:
        backend_pid(connection)

    # That failure made the pool replace its connections.
    with engine.connect() as connection:
        assert backend_pid(connection) != dead


def test_failed_ping_replaces_whole_pool(
    database_url: str, terminate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_AFTER_IDLE", 1.0)
    engine = create_data_engine(database_url, pool_size=2)
    try:
        with engine.connect() as idle, engine.connect() as busy:
            pids = [backend_pid(idle), backend_pid(busy)]
            idle.close()
            time.sleep(1.2)
        # The pool hands out the idle connection first. Both server processes
        # end, as in a database restart, while only the idle one is due a ping.
        for pid in pids:
            terminate(pid)

        with engine.connect() as first, engine.connect() as second:
            # The idle one failed its ping, so the recently used one was
            # replaced as well rather than handed out dead.
            assert backend_pid(first) not in pids
            assert backend_pid(second) not in pids
    finally:
        engine.dispose()


def test_read_session_runs_queries_without_transaction(engine: Engine) -> None:
    reads = sessionmaker(bind=database.read_only(engine.execution_options(logging_token="read")))

    with reads() as session:
        database.begin_autocommit(session)
        first = session.execute(text("SELECT txid_current_if_assigned(), now()")).one()
        second = session.execute(text("SELECT now()")).scalar_one()
        with pytest.raises(database.WriteInReadSession):
            session.execute(text("CREATE TABLE written_in_read (id int)"))
    with engine.connect() as connection:
        # The pool's one connection, out of autocommit again for this transaction.
        connection.execute(text("SELECT 1"))
        in_transaction = connection.execute(text("SELECT txid_current()")).scalar_one()
        again = connection.execute(text("SELECT txid_current()")).scalar_one()
        table = connection.execute(text("SELECT to_regclass('written_in_read')")).scalar_one()

    assert first[0] is None
    # now() is the start of the transaction, so it differs only between transactions.
    assert second > first[1]
    assert in_transaction == again
    assert table is None


def prepared_names(connection: Connection) -> list[str]:
    query = text("SELECT name FROM pg_prepared_statements WHERE name LIKE 'atlas_%' ORDER BY name")
    return list(connection.execute(query).scalars())


def test_marked_statement_is_prepared_once_per_connection(engine: Engine, terminate) -> None:
    # A literal percent sign and a parameter used twice, as SQLAlchemy writes them.
    query = text(
        "SELECT :word || '%' AS percent, :word = :word AS same, length(:other) AS other"
    ).execution_options(**{database.PREPARE: True})
    parameters = {"word": "ten", "other": "four"}

    with engine.connect() as connection:
        first = connection.execute(query, parameters).one()
        second = connection.execute(query, {"word": "one", "other": "xy"}).one()
        names = prepared_names(connection)
        pid = backend_pid(connection)
    # The same connection, from the pool: nothing is prepared again.
    with engine.connect() as connection:
        assert backend_pid(connection) == pid
        again = connection.execute(query, parameters).one()
        assert prepared_names(connection) == names

    assert tuple(first) == ("ten%", True, 4)
    assert tuple(second) == ("one%", True, 2)
    assert tuple(again) == tuple(first)
    assert len(names) == 1

    # A new connection in the pool's record prepares the statement anew.
    terminate(pid)
    time.sleep(PING_AFTER_IDLE + 0.2)
    with engine.connect() as connection:
        assert backend_pid(connection) != pid
        assert tuple(connection.execute(query, parameters).one()) == ("ten%", True, 4)
        assert prepared_names(connection) == names


def test_unmarked_statement_is_not_prepared(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        assert prepared_names(connection) == []
