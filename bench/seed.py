"""Bulk seeding of boxes straight into the benchmark suite's database.

Going through the API would take hours for 100k boxes; the rows written
here are the ones the API would write for a released version with one
provider that points at an external URL.
"""

from __future__ import annotations

import datetime as dt

import psycopg2
from psycopg2.extras import execute_values
from sqlalchemy.engine import make_url


def connect(database_url: str):  # type: ignore[no-untyped-def]
    url = make_url(database_url)
    return psycopg2.connect(host=url.host, port=url.port, user=url.username, dbname=url.database)


def seed_boxes(database_url: str, owner: str, start: int, count: int) -> list[str]:
    """Create boxes ``owner/box-<start>`` … and return their metadata paths."""
    now = dt.datetime.now(dt.UTC)
    connection = connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT id FROM accounts WHERE lower(username) = lower(%s)", (owner,))
            account_id = cursor.fetchone()[0]
            names = [f"box-{index}" for index in range(start, start + count)]
            box_ids = execute_values(
                cursor,
                "INSERT INTO boxes (account_id, name, short_description, private, downloads,"
                " created_at, updated_at) VALUES %s RETURNING id",
                [(account_id, name, f"seeded box {name}", False, 0, now, now) for name in names],
                fetch=True,
                page_size=1000,
            )
            version_ids = execute_values(
                cursor,
                "INSERT INTO versions (box_id, version, status, created_at, updated_at,"
                " released_at) VALUES %s RETURNING id",
                [(box_id, "1.0.0", "active", now, now, now) for (box_id,) in box_ids],
                fetch=True,
                page_size=1000,
            )
            execute_values(
                cursor,
                "INSERT INTO providers (version_id, name, architecture, default_architecture,"
                " state, original_url, checksum, checksum_type, downloads, created_at,"
                " updated_at) VALUES %s",
                [
                    (
                        version_id,
                        "libvirt",
                        "amd64",
                        True,
                        "uploaded",
                        f"https://boxes.example.invalid/{owner}/{index}.box",
                        "0" * 64,
                        "sha256",
                        0,
                        now,
                        now,
                    )
                    for index, (version_id,) in enumerate(version_ids)
                ],
                page_size=1000,
            )
        return [f"/{owner}/{name}" for name in names]
    finally:
        connection.close()
