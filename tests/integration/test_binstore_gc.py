"""Garbage collection: what it removes after the grace period, and what it must spare.

Tests cannot wait a grace period (a day by default), so they move the
recorded times back: the artifact's ``orphaned_at``, the target's
``expires_at`` and the files' modification times.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from services.cli.commands.gc import cmd_gc
from tests.conftest import Client
from tests.integration.binstore_helpers import Database, StoredState, new_slot

TWO_DAYS = 2 * 86400  # seconds, past the default grace period of one day


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def age_file(path: Path, seconds: float = TWO_DAYS) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def stored(storage_root: Path) -> StoredState:
    return StoredState(storage_root)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.engine.dispose()


@pytest.fixture
def binstore(suite: Any) -> Iterator[Any]:
    proxy = suite.rpc()
    yield proxy.start().binstore
    proxy.stop()


def orphan(user: Client) -> tuple[Any, bytes, bytes]:
    """Upload a file to a provider, then replace it; return the slot, old and new content."""
    old, new = os.urandom(50_000), os.urandom(50_000)
    slot = new_slot(user)
    assert requests.put(slot.upload_url, data=old, timeout=30).status_code == 200
    checksum = {"checksum_type": "sha256", "checksum": sha256(new)}
    assert user.put(slot.provider_path, json={"provider": checksum}).status_code == 200
    assert requests.put(slot.new_target(), data=new, timeout=30).status_code == 200
    return slot, old, new


def age_orphan(database: Database, stored: StoredState, digest: str) -> None:
    database.execute(
        "UPDATE artifacts SET orphaned_at = now() - interval '2 days' WHERE sha256 = :digest",
        digest=digest,
    )
    age_file(stored.blob_path(digest))


def reported_blobs(report: dict[str, Any]) -> dict[str, str]:
    return {blob["sha256"]: blob["reason"] for blob in report["blobs"]}


def test_gc_keeps_blob_within_grace_period(
    user: Client, stored: StoredState, database: Database, binstore: Any
) -> None:
    _, old, _ = orphan(user)

    report = binstore.collect_garbage(False)
    marked = database.execute("SELECT orphaned_at FROM artifacts WHERE sha256 = :d", d=sha256(old))

    assert sha256(old) not in reported_blobs(report)
    assert report["waiting_blobs"] >= 1
    assert marked[0].orphaned_at is not None
    assert stored.has_blob(sha256(old))


def test_gc_deletes_blob_unreferenced_past_grace_period(
    user: Client, stored: StoredState, database: Database, binstore: Any
) -> None:
    slot, old, new = orphan(user)
    binstore.collect_garbage(False)
    age_orphan(database, stored, sha256(old))

    dry_run = binstore.collect_garbage(True)
    kept_by_dry_run = stored.has_blob(sha256(old))
    report = binstore.collect_garbage(False)
    rows = database.execute("SELECT 1 FROM artifacts WHERE sha256 = :d", d=sha256(old))

    assert reported_blobs(dry_run)[sha256(old)] == "unreferenced"
    assert kept_by_dry_run
    assert reported_blobs(report)[sha256(old)] == "unreferenced"
    assert not stored.has_blob(sha256(old))
    assert rows == []
    assert stored.has_blob(sha256(new))
    assert slot.provider()["checksum"] == sha256(new)


def test_gc_spares_blob_stored_again_within_grace_period(
    user: Client, stored: StoredState, database: Database, binstore: Any
) -> None:
    _, old, _ = orphan(user)
    binstore.collect_garbage(False)
    age_orphan(database, stored, sha256(old))
    # An upload of the same content committed the blob again just now.
    os.utime(stored.blob_path(sha256(old)))

    report = binstore.collect_garbage(False)
    again = new_slot(user)
    attached = requests.put(again.upload_url, data=old, timeout=30)

    assert sha256(old) not in reported_blobs(report)
    assert stored.has_blob(sha256(old))
    assert attached.status_code == 200
    assert again.is_uploaded()


def test_gc_deletes_old_blob_without_artifact_record(stored: StoredState, binstore: Any) -> None:
    stray, recent = os.urandom(1000), os.urandom(1000)
    for content in (stray, recent):
        path = stored.blob_path(sha256(content))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    age_file(stored.blob_path(sha256(stray)))

    try:
        report = binstore.collect_garbage(False)

        assert reported_blobs(report)[sha256(stray)] == "no artifact record"
        assert not stored.has_blob(sha256(stray))
        assert sha256(recent) not in reported_blobs(report)
        assert stored.has_blob(sha256(recent))
    finally:
        stored.blob_path(sha256(recent)).unlink(missing_ok=True)


def test_gc_removes_expired_targets_and_their_partial_uploads(
    user: Client, stored: StoredState, database: Database, binstore: Any
) -> None:
    expired, live = new_slot(user), new_slot(user)
    before = set(stored.partial_uploads())
    for slot in (expired, live):
        response = requests.put(
            slot.upload_url,
            data=b"x" * 100,
            headers={"Content-Range": "bytes 0-99/1000"},
            timeout=30,
        )
        assert response.status_code == 202
    expired_id, live_id = sorted(set(stored.partial_uploads()) - before)
    database.execute(
        "UPDATE upload_targets SET expires_at = now() - interval '2 days' WHERE id = :id",
        id=int(expired_id),
    )

    dry_run = binstore.collect_garbage(True)
    partials_after_dry_run = stored.partial_uploads()
    report = binstore.collect_garbage(False)
    targets = database.execute(
        "SELECT id FROM upload_targets WHERE id IN (:expired, :live) ORDER BY id",
        expired=int(expired_id),
        live=int(live_id),
    )

    assert {"name": expired_id, "size": 100} in dry_run["partial_uploads"]
    assert dry_run["expired_upload_targets"] >= 1
    assert expired_id in partials_after_dry_run
    assert {"name": expired_id, "size": 100} in report["partial_uploads"]
    assert report["expired_upload_targets"] >= 1
    assert expired_id not in stored.partial_uploads()
    assert live_id in stored.partial_uploads()
    assert [row.id for row in targets] == [int(live_id)]


def test_gc_deletes_stale_temporary_files(stored: StoredState, binstore: Any) -> None:
    stale = stored.root / "tmp" / "upload-left-by-a-crash"
    fresh = stored.root / "tmp" / "upload-in-progress"
    stale.write_bytes(b"x" * 10)
    fresh.write_bytes(b"y" * 10)
    age_file(stale)

    try:
        report = binstore.collect_garbage(False)

        assert {"name": stale.name, "size": 10} in report["temporary_files"]
        assert not stale.exists()
        assert fresh.exists()
    finally:
        fresh.unlink(missing_ok=True)


def test_atlas_gc_dry_run_lists_garbage(
    user: Client,
    stored: StoredState,
    database: Database,
    binstore: Any,
    base_config: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, old, _ = orphan(user)
    binstore.collect_garbage(False)
    age_orphan(database, stored, sha256(old))

    status = cmd_gc(base_config, argparse.Namespace(dry_run=True, timeout=30.0))
    output = capsys.readouterr().out

    assert status == 0
    assert f"would delete blob {sha256(old)} (50000 bytes): unreferenced" in output
    assert "would delete" in output.splitlines()[-2]
    assert "kept until their grace period of 86400 seconds" in output
    assert stored.has_blob(sha256(old))
