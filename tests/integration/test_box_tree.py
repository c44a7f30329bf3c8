"""A box read with read_box_tree serializes exactly as the same box loaded by the ORM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from services.data import access
from services.data.models import Account
from services.data.serialize import Urls, box_dict, downloads_dict, metadata_dict
from services.toolkit.errors import NotFound
from tests.conftest import Client
from tests.publishing import api_publish

URLS = Urls("https://atlas.example")


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def serialized(session: Session, box: object) -> list[dict]:
    return [
        box_dict(URLS, box, with_unreleased=True),  # type: ignore[arg-type]
        box_dict(URLS, box, with_unreleased=False),  # type: ignore[arg-type]
        metadata_dict(URLS, box),  # type: ignore[arg-type]
        downloads_dict(box, with_unreleased=True),  # type: ignore[arg-type]
    ]


def orm_loaded(session: Session, username: str, name: str) -> list[dict]:
    session.expire_all()
    box = access.require_box(session, {"id": -1}, username, name, lock=False)
    return serialized(session, box)


def test_tree_matches_orm_for_versions_and_providers(user: Client, session: Session) -> None:
    tag = api_publish(user, user.username, versions=("1.0.0", "1.10.0", "1.2.0-rc1"))
    base = f"/api/v1/box/{tag}"
    # An unreleased version with two providers, neither with a file yet.
    assert user.post(f"{base}/versions", json={"version": {"version": "2.0.0"}}).ok
    for provider in ("virtualbox", "vmware_desktop"):
        body = {"provider": {"name": provider}}
        created = user.post(f"{base}/version/2.0.0/providers", json=body)
        assert created.ok, created.text
    # A version with no provider at all.
    assert user.post(f"{base}/versions", json={"version": {"version": "3.0.0"}}).ok
    username, name = tag.split("/")

    tree = access.read_box_tree(session, {"id": -1}, username.upper(), name)

    providers = {version.version: len(version.providers) for version in tree.versions}
    assert providers == {"1.0.0": 1, "1.10.0": 1, "1.2.0-rc1": 1, "2.0.0": 2, "3.0.0": 0}
    assert serialized(session, tree) == orm_loaded(session, username, name)


def test_tree_matches_orm_for_box_without_versions(user: Client, session: Session) -> None:
    tag = api_publish(user, user.username, versions=())
    username, name = tag.split("/")

    tree = access.read_box_tree(session, None, username, name)

    assert tree.versions == []
    assert serialized(session, tree) == orm_loaded(session, username, name)


def test_tree_of_private_box_needs_a_role(user: Client, session: Session) -> None:
    tag = api_publish(user, user.username, private=True)
    username, name = tag.split("/")
    owner = session.scalar(select(Account).where(Account.username == username))
    assert owner is not None

    with pytest.raises(NotFound, match=f"box {tag} not found"):
        access.read_box_tree(session, None, username, name)
    with pytest.raises(NotFound, match=f"box {tag} not found"):
        access.read_box_tree(session, {"id": -1}, username, name)
    assert access.read_box_tree(session, {"id": owner.id}, username, name).private is True


def test_tree_of_missing_box_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="box nobody/nothing not found"):
        access.read_box_tree(session, None, "nobody", "nothing")
