"""Migrations build the schema the models describe, and undo it cleanly."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from alembic import command
from services.cli.database import alembic_config
from services.data.models import Base
from tests.conftest import create_test_database, drop_test_database


def test_migrations_match_models_and_downgrade() -> None:
    name = f"atlas_migrations_{uuid.uuid4().hex[:8]}"
    url = create_test_database(name)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

        command.downgrade(alembic_config(url), "base")
        with engine.connect() as connection:
            tables_after_downgrade = set(inspect(connection).get_table_names())
        command.upgrade(alembic_config(url), "head")
        with engine.connect() as connection:
            tables_after_upgrade = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
        drop_test_database(name)

    assert differences == []
    assert tables_after_downgrade == {"alembic_version"}
    assert set(Base.metadata.tables) <= tables_after_upgrade


def test_upgrade_renders_stored_descriptions() -> None:
    name = f"atlas_migrations_{uuid.uuid4().hex[:8]}"
    url = create_test_database(name)
    engine = create_engine(url)
    try:
        command.downgrade(alembic_config(url), "0011")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO accounts (username, kind, created_at, updated_at)"
                    " VALUES ('old', 'user', now(), now())"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO boxes (account_id, name, description, private, downloads,"
                    " created_at, updated_at)"
                    " SELECT id, 'base', '**bold**', false, 0, now(), now() FROM accounts"
                )
            )
        command.upgrade(alembic_config(url), "head")
        with engine.connect() as connection:
            rendered = connection.execute(text("SELECT description_html FROM boxes")).scalar()
    finally:
        engine.dispose()
        drop_test_database(name)

    assert rendered == "<p><strong>bold</strong></p>\n"


def test_upgrade_clears_checksums_that_atlas_filled_in() -> None:
    name = f"atlas_migrations_{uuid.uuid4().hex[:8]}"
    url = create_test_database(name)
    engine = create_engine(url)
    stored, declared = "a" * 64, "b" * 64
    try:
        command.downgrade(alembic_config(url), "0012")
        with engine.begin() as connection:
            for statement in (
                "INSERT INTO accounts (username, kind, created_at, updated_at)"
                " VALUES ('old', 'user', now(), now())",
                "INSERT INTO boxes (account_id, name, private, downloads, created_at, updated_at)"
                " SELECT id, 'base', false, 0, now(), now() FROM accounts",
                "INSERT INTO versions (box_id, version, status, created_at, updated_at)"
                " SELECT id, '1.0.0', 'unreleased', now(), now() FROM boxes",
                f"INSERT INTO artifacts (sha256, size, created_at) VALUES ('{stored}', 1, now())",
            ):
                connection.execute(text(statement))
            for provider, checksum in (("libvirt", stored), ("virtualbox", declared)):
                connection.execute(
                    text(
                        "INSERT INTO providers (version_id, name, architecture,"
                        " default_architecture, state, checksum_type, checksum, artifact_sha256,"
                        " downloads, created_at, updated_at)"
                        " SELECT id, :provider, 'unknown', true, 'uploaded', 'sha256', :checksum,"
                        " :stored, 0, now(), now() FROM versions"
                    ),
                    {"provider": provider, "checksum": checksum, "stored": stored},
                )
        command.upgrade(alembic_config(url), "head")
        with engine.connect() as connection:
            checksums = dict(
                connection.execute(text("SELECT name, checksum FROM providers")).tuples().all()
            )
    finally:
        engine.dispose()
        drop_test_database(name)

    assert checksums == {"libvirt": None, "virtualbox": declared}
