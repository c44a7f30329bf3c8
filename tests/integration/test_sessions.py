"""Browser sessions in the data service: start, resume, end and expiry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from services.data import sessions
from services.data.models import WebSession
from services.toolkit.crypto import hash_token
from services.toolkit.errors import Unauthenticated
from tests.pages import PASSWORD, make_person


@pytest.fixture
def db(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_session_resumes_until_it_is_ended(data_rpc: Any) -> None:
    person = make_person(data_rpc)

    started = data_rpc.start_session(person, PASSWORD)
    resumed = data_rpc.resume_session(started["session"])
    data_rpc.end_session(started["session"])

    assert started["user"] == {"username": person}
    assert resumed["actor"]["username"] == person
    with pytest.raises(Unauthenticated, match="sign in again"):
        data_rpc.resume_session(started["session"])


def test_session_needs_the_right_password(data_rpc: Any) -> None:
    person = make_person(data_rpc)

    with pytest.raises(Unauthenticated, match="invalid username or password"):
        data_rpc.start_session(person, "wrong password")


def test_only_the_session_hash_is_stored(data_rpc: Any, db: Session) -> None:
    person = make_person(data_rpc)

    secret = data_rpc.start_session(person, PASSWORD)["session"]

    stored = db.scalar(select(WebSession).where(WebSession.token_hash == hash_token(secret)))
    assert stored is not None
    assert stored.token_hash != secret


def test_expired_session_is_rejected_and_later_removed(data_rpc: Any, db: Session) -> None:
    person = make_person(data_rpc)

    expired = sessions.start_session(db, person, PASSWORD, ttl=-1)["session"]
    db.commit()
    with pytest.raises(Unauthenticated, match="expired"):
        sessions.resume_session(db, expired)
    sessions.start_session(db, person, PASSWORD, ttl=60)
    db.commit()

    remaining = db.scalar(select(func.count()).where(WebSession.token_hash == hash_token(expired)))
    assert remaining == 0
