"""The search migration marks the boxes that already had a released version."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text

from alembic import command
from services.cli.database import alembic_config, migrate
from tests.conftest import POSTGRES_URL, drop_test_database

INSERT_BOX = """
INSERT INTO boxes (account_id, name, private, downloads, created_at, updated_at)
VALUES (:account, :name, false, 0, now(), now()) RETURNING id
"""
INSERT_VERSION = """
INSERT INTO versions (box_id, version, status, created_at, updated_at)
VALUES (:box, '1.0.0', :status, now(), now())
"""


def test_upgrade_marks_boxes_with_released_versions() -> None:
    name = f"atlas_search_migration_{uuid.uuid4().hex[:8]}"
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    migrate(url, "0001")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            account = connection.scalar(
                text(
                    "INSERT INTO accounts (kind, username, created_at, updated_at)"
                    " VALUES ('user', 'alice', now(), now()) RETURNING id"
                )
            )
            for box, status in (("released", "active"), ("draft", "unreleased")):
                box_id = connection.scalar(text(INSERT_BOX), {"account": account, "name": box})
                connection.execute(text(INSERT_VERSION), {"box": box_id, "status": status})

        command.upgrade(alembic_config(url), "head")
        with engine.connect() as connection:
            released = dict(connection.execute(text("SELECT name, released FROM boxes")).all())
    finally:
        engine.dispose()
        drop_test_database(name)

    assert released == {"released": True, "draft": False}
