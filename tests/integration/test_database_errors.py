"""Which database errors tell the data service's callers to try again, and with what message."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from services.data.database import unavailable_error


def test_concurrent_update_asks_to_try_again(database_url: str) -> None:
    engine = create_engine(database_url)
    table = f"conflict_{uuid.uuid4().hex[:10]}"
    try:
        with engine.begin() as setup:
            setup.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, n int)"))
            setup.execute(text(f"INSERT INTO {table} VALUES (1, 0)"))
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as first:
            first.execute(text(f"SELECT n FROM {table} WHERE id = 1"))
            with engine.begin() as second:
                second.execute(text(f"UPDATE {table} SET n = n + 1 WHERE id = 1"))
            with pytest.raises(DBAPIError) as failed:
                first.execute(text(f"UPDATE {table} SET n = n + 1 WHERE id = 1"))
            first.rollback()
    finally:
        with engine.begin() as cleanup:
            cleanup.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()

    error = unavailable_error(failed.value)

    assert error is not None
    assert str(error) == "the change conflicted with another one made at the same time; try again"


def test_missing_table_is_not_unavailable(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection, pytest.raises(DBAPIError) as failed:
            connection.execute(text("SELECT * FROM no_such_table"))
    finally:
        engine.dispose()

    assert unavailable_error(failed.value) is None
