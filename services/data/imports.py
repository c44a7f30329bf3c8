"""box.import: submitting an import, and the upload target its worker stores the file with."""

from __future__ import annotations

import datetime as dt
from typing import Any

from schemas import requests as bodies
from schemas.validation import validate as parse
from services.toolkit.crypto import hash_token, new_token
from services.toolkit.errors import InvalidTransition, NotFound, Unprocessable

from . import access, jobs
from .access import Level
from .boxes import require_provider
from .database import UnitOfWork
from .models import JobState, Provider, UploadTarget, VersionStatus, utcnow

IMPORT_KIND = "box.import"


def import_provider(
    unit: UnitOfWork,
    actor: access.Actor,
    username: str,
    name: str,
    version: str,
    provider: str,
    architecture: str | None,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Submit box.import to fetch the provider's box from a URL into binstore."""
    request = parse(bodies.BoxImport, fields)
    found = require_provider(
        unit.session, actor, username, name, version, provider, architecture, Level.PUBLISH
    )
    if found.version.status == VersionStatus.REVOKED:
        raise Unprocessable(f"version {version} was revoked; its providers take no uploads")
    if request.checksum_type is not None:
        # binstore checks the declared checksum when the worker uploads the file.
        found.checksum_type = request.checksum_type
        found.checksum = (request.checksum or "").lower()
    assert actor is not None
    job = jobs.submit(
        unit,
        IMPORT_KIND,
        {
            "provider_id": found.id,
            "url": request.url,
            "checksum_type": found.checksum_type,
            "checksum": found.checksum,
        },
        box=found.version.box,
        actor=actor["username"],
    )
    return jobs.job_dict(job, history=True)


def create_job_upload_target(
    unit: UnitOfWork, job_id: int, attempt: int, ttl: float
) -> dict[str, Any]:
    """Return an upload token for the provider of a running box.import attempt."""
    job = jobs.lock(unit.session, job_id)
    if job.kind != IMPORT_KIND or job.state != JobState.RUNNING or job.attempt != attempt:
        raise InvalidTransition(
            f"job {job_id} is not a running box.import at attempt {attempt}; "
            "it cannot upload a file"
        )
    provider = unit.session.get(Provider, job.payload.get("provider_id"))
    if provider is None:
        raise NotFound(f"provider of job {job_id} not found; it was deleted")
    token = new_token()
    expires_at = utcnow() + dt.timedelta(seconds=ttl)
    unit.session.add(
        UploadTarget(
            provider=provider, token_hash=hash_token(token), direct=False, expires_at=expires_at
        )
    )
    return {"token": token, "expires_at": expires_at.isoformat()}
