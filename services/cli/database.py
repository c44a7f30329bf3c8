"""Database creation and migrations, run by the operator before the services start."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from alembic import command

ROOT = Path(__file__).resolve().parents[2]


def create_database(url: str) -> bool:
    """Create the database named in ``url`` unless it exists; return whether it was created."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise ValueError(
            f"database URL {parsed.render_as_string(hide_password=True)} names no database"
        )
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if exists:
                return False
            quoted = connection.dialect.identifier_preparer.quote(name)
            connection.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        engine.dispose()


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Create the database if needed and upgrade its schema to ``revision``."""
    create_database(url)
    command.upgrade(alembic_config(url), revision)
