"""``atlas migrate``: create the database if missing and upgrade its schema."""

from __future__ import annotations

import argparse
from typing import Any

from services.toolkit import config as cfg

from ..common import say
from ..database import migrate


def register(commands: Any) -> None:
    migrate_cmd = commands.add_parser(
        "migrate",
        help="create the database and upgrade its schema",
        description="Create the database named in ATLAS_DATABASE_URL if it is missing, "
        "then upgrade its schema to the newest revision.",
    )
    migrate_cmd.set_defaults(func=cmd_migrate)


def cmd_migrate(config: dict[str, Any], args: argparse.Namespace) -> int:
    url = cfg.database_url(config)
    migrate(url)
    say("database schema is up to date")
    return 0
