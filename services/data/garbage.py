"""What garbage collection may remove: unreferenced artifacts and expired upload targets.

binstore owns the files and calls these functions to learn which of them
are garbage. An artifact is garbage once no provider has referred to it
for a grace period. The first collection that finds it unreferenced marks
it (``orphaned_at``). A later one, a grace period on, deletes its row, and
binstore deletes its file.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, select, update
from sqlalchemy.orm import Session

from .database import UnitOfWork
from .models import Artifact, Provider, UploadTarget, utcnow


def _unreferenced() -> ColumnElement[bool]:
    return ~exists().where(Provider.artifact_sha256 == Artifact.sha256)


def collect_unreferenced_artifacts(
    unit: UnitOfWork, grace: dt.timedelta, dry_run: bool
) -> dict[str, Any]:
    """Delete the rows of artifacts unreferenced for longer than ``grace`` and return them.

    Returns ``{"artifacts": [{"sha256", "size", "orphaned_at"}], "waiting": n}``,
    where ``waiting`` counts unreferenced artifacts still inside the grace
    period. A dry run changes nothing and returns what a real run would delete.
    """
    session = unit.session
    now = utcnow()
    cutoff = now - grace
    if not dry_run:
        session.execute(
            update(Artifact)
            .where(Artifact.orphaned_at.is_(None), _unreferenced())
            .values(orphaned_at=now)
        )
        session.execute(
            update(Artifact)
            .where(Artifact.orphaned_at.is_not(None), ~_unreferenced())
            .values(orphaned_at=None)
        )

    query = (
        select(Artifact.sha256, Artifact.size, Artifact.orphaned_at)
        .where(Artifact.orphaned_at < cutoff, _unreferenced())
        .order_by(Artifact.sha256)
    )
    if not dry_run:
        # An upload that is attaching one of these rows holds its lock; skip
        # the row rather than delete a file about to be referenced.
        query = query.with_for_update(of=Artifact, skip_locked=True)
    condemned = session.execute(query).all()
    if condemned and not dry_run:
        session.execute(
            delete(Artifact).where(Artifact.sha256.in_([row.sha256 for row in condemned]))
        )

    waiting = session.scalar(
        select(func.count())
        .select_from(Artifact)
        .where(_unreferenced())
        .where(Artifact.orphaned_at.is_(None) | (Artifact.orphaned_at >= cutoff))
    )
    return {
        "artifacts": [
            {"sha256": row.sha256, "size": row.size, "orphaned_at": row.orphaned_at.isoformat()}
            for row in condemned
        ],
        "waiting": int(waiting or 0),
    }


def known_artifacts(session: Session, sha256s: list[str]) -> list[str]:
    """Return the digests among ``sha256s`` that have an artifact row."""
    if not sha256s:
        return []
    return list(session.scalars(select(Artifact.sha256).where(Artifact.sha256.in_(sha256s))))


def live_upload_targets(session: Session, target_ids: list[int], grace: dt.timedelta) -> list[int]:
    """Return the ids among ``target_ids`` of targets that may still receive a file.

    A target stays live until it is completed, or until ``grace`` after it expired.
    """
    if not target_ids:
        return []
    return list(
        session.scalars(
            select(UploadTarget.id).where(
                UploadTarget.id.in_(target_ids),
                UploadTarget.completed_at.is_(None),
                UploadTarget.expires_at >= utcnow() - grace,
            )
        )
    )


def remove_expired_upload_targets(unit: UnitOfWork, grace: dt.timedelta, dry_run: bool) -> int:
    """Delete upload targets that expired more than ``grace`` ago; return how many."""
    expired = UploadTarget.expires_at < utcnow() - grace
    if dry_run:
        count = unit.session.scalar(select(func.count()).select_from(UploadTarget).where(expired))
        return int(count or 0)
    result = unit.session.execute(delete(UploadTarget).where(expired))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
