"""box.import: submitting an import, and the upload target each attempt stores the file with.

An import owns one upload target for its provider. Each attempt gets a new
token for that target, which stops a stale attempt's token from working,
while binstore keeps the bytes received so far under the target's id. So
the next attempt queries binstore for the bytes stored, requests the rest
from the source with ``Range`` and continues the upload there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from schemas.requests import BoxImport
from schemas.validation import validate
from services.toolkit.crypto import hash_token, new_token
from services.toolkit.errors import Conflict, NotFound, Unprocessable

from . import access, jobs
from .access import Actor, Level
from .boxes import require_provider
from .database import UnitOfWork
from .models import TERMINAL_JOB_STATES, Job, JobState, UploadTarget, VersionStatus, utcnow
from .uploads import check_target_open

IMPORT_KIND = "box.import"


def submit(
    unit: UnitOfWork,
    actor: Actor,
    username: str,
    name: str,
    version: str,
    provider: str,
    architecture: str | None,
    fields: dict[str, Any],
    ttl: float,
) -> dict[str, Any]:
    """Submit a box.import job that fetches the provider's box file from a URL."""
    request = validate(BoxImport, fields)
    session = unit.session
    found = require_provider(
        session, actor, username, name, version, provider, architecture, Level.PUBLISH
    )
    if found.version.status == VersionStatus.REVOKED:
        raise Unprocessable(f"version {version} was revoked; its providers take no uploads")
    access.check_released_change(session, actor, found.version, "import into")
    # The box's row is locked, so two imports submitted together see each other.
    under_way = session.scalar(
        select(Job.id)
        .join(UploadTarget, UploadTarget.job_id == Job.id)
        .where(UploadTarget.provider_id == found.id, Job.state.not_in(TERMINAL_JOB_STATES))
        .limit(1)
    )
    if under_way is not None:
        raise Conflict(
            f"job {under_way} is already importing a file into this provider; "
            "wait for it to finish or cancel it"
        )

    checksum_type = request.checksum_type or None
    checksum = request.checksum.lower() if request.checksum else None
    box = found.version.box
    job = jobs.submit(
        unit,
        IMPORT_KIND,
        {
            "provider_id": found.id,
            "url": request.url,
            "checksum_type": checksum_type,
            "checksum": checksum,
        },
        unit.policy,
        account_id=box.account_id,
        box_id=box.id,
    )
    session.add(
        UploadTarget(
            provider=found,
            job_id=job.id,
            # A random token that is discarded, so the target is unusable
            # until the first attempt sets a token of its own.
            token_hash=hash_token(new_token()),
            checksum_type=checksum_type,
            checksum=checksum,
            expires_at=utcnow() + dt.timedelta(seconds=ttl),
            issued_by=access.require_actor(actor)["id"],
        )
    )
    return jobs.shown_to_members(jobs.job_dict(job, with_payload=True))


def open_upload(
    unit: UnitOfWork, job_id: int, attempt: int, ttl: float, restart: bool = False
) -> dict[str, Any]:
    """Return the upload target of a running import attempt, with a new token.

    Returns ``{"completed": False, "token", "size"}``, where ``size`` is the
    total that the upload's first part announced (None before any part), or
    ``{"completed": True, "sha256"}`` if an earlier attempt stored the file.
    ``restart`` abandons the bytes received so far and starts a new target.
    """
    session = unit.session
    job = session.get(Job, job_id, with_for_update=True)
    if job is None or job.kind != IMPORT_KIND:
        raise NotFound(f"box.import job {job_id} not found")
    if job.state != JobState.RUNNING or job.attempt != attempt:
        raise Conflict(f"attempt {attempt} of job {job_id} is no longer running")
    target = session.scalar(
        select(UploadTarget).where(UploadTarget.job_id == job_id).order_by(UploadTarget.id.desc())
    )
    if target is None:
        raise NotFound(f"the provider of job {job_id} was deleted")
    if target.completed_at is not None:
        return {"completed": True, "sha256": target.artifact_sha256}
    check_target_open(session, target)

    now = utcnow()
    if restart:
        # Garbage collection removes the abandoned bytes once the target expired.
        target.expires_at = now
        target = UploadTarget(
            provider_id=target.provider_id,
            job_id=job_id,
            checksum_type=target.checksum_type,
            checksum=target.checksum,
            # Issued with the import: check_target_open compares the time
            # with the release and checks the issuer's role.
            created_at=target.created_at,
            issued_by=target.issued_by,
        )
        session.add(target)
    token = new_token()
    target.token_hash = hash_token(token)
    target.expires_at = now + dt.timedelta(seconds=ttl)
    session.flush()
    return {"completed": False, "token": token, "size": target.size}
