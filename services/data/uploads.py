"""Upload targets for binstore and authorization of downloads.

The gateway asks for an upload target; the client PUTs the file to
binstore with the target's token; binstore asks here what checksum to
expect and reports the stored blob, which this module attaches to the
provider. A target is single-use and expires.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.toolkit.crypto import hash_token, new_token
from services.toolkit.errors import Conflict, NotFound, PermissionDenied, Unprocessable

from . import access, jobs
from .access import Level
from .boxes import INSPECT_KIND, provider_event, require_provider
from .database import UnitOfWork
from .lifecycle import Policy
from .models import (
    Artifact,
    Box,
    InspectionState,
    Job,
    JobState,
    Provider,
    ProviderState,
    UploadTarget,
    Version,
    VersionStatus,
    utcnow,
)
from .serialize import Urls, provider_dict


def create_upload_target(
    unit: UnitOfWork,
    actor: access.Actor,
    username: str,
    name: str,
    version: str,
    provider: str,
    architecture: str | None,
    direct: bool,
    ttl: float,
) -> dict[str, Any]:
    found = require_provider(
        unit.session, actor, username, name, version, provider, architecture, Level.PUBLISH
    )
    if found.version.status == VersionStatus.REVOKED:
        raise Unprocessable(f"version {version} was revoked; its providers take no uploads")
    access.check_released_change(unit.session, actor, found.version, "upload to")
    token = new_token()
    expires_at = utcnow() + dt.timedelta(seconds=ttl)
    unit.session.add(
        UploadTarget(
            provider=found,
            token_hash=hash_token(token),
            direct=direct,
            expires_at=expires_at,
            issued_by=access.require_actor(actor)["id"],
        )
    )
    return {
        "token": token,
        "expires_at": expires_at.isoformat(),
        # What the file must match, if the publisher declared a checksum.
        "checksum_type": found.checksum_type,
        "checksum": found.checksum,
    }


def _usable_target(session: Session, token: str, lock: bool = False) -> UploadTarget:
    query = select(UploadTarget).where(UploadTarget.token_hash == hash_token(token))
    if lock:
        query = query.with_for_update()
    target = session.scalar(query)
    if target is None or target.expires_at < utcnow():
        raise NotFound("upload target not found or expired; request a new upload URL")
    if target.completed_at is not None:
        raise NotFound("upload target was already used; request a new upload URL")
    check_target_open(session, target)
    return target


def check_target_open(session: Session, target: UploadTarget) -> None:
    """Raise if the target's version or its issuer's role no longer allows an upload through it.

    A target is checked against the version's state and the issuer's role
    when it is issued. A later release closes it (Unprocessable), because
    only an owner or admin may change a released version's files, a revoke
    closes every target, and an issuer who lost the role gets PermissionDenied.
    """
    version = target.provider.version
    box = version.box
    if version.status == VersionStatus.REVOKED:
        raise Unprocessable(f"version {version.version} was revoked; its providers take no uploads")
    if version.released_at is not None and version.released_at > target.created_at:
        raise Unprocessable(
            f"version {version.version} was released after this upload URL was issued; "
            f"an owner or admin of {box.account.username!r} can request a new one"
        )
    if target.issued_by is None:
        return
    needed = Level.PUBLISH if version.status == VersionStatus.UNRELEASED else Level.MANAGE
    level = access.level_on(session, {"id": target.issued_by}, box.account)
    if level is None or level < needed:
        raise PermissionDenied(
            f"the user who requested this upload URL may no longer upload to "
            f"{box.account.username}/{box.name}"
        )


def begin_upload(unit: UnitOfWork, token: str, size: int | None = None) -> dict[str, Any]:
    """Return what binstore must check while it receives the file for ``token``.

    ``size`` is the total of a resumable upload. The first part records it;
    a part that announces another total raises ``Conflict``.
    """
    target = _usable_target(unit.session, token, lock=size is not None)
    if size is not None:
        if target.size is None:
            target.size = size
        elif target.size != size:
            raise Conflict(
                f"this upload URL is receiving a file of {target.size} bytes, not {size}; "
                "resume that upload or request a new upload URL"
            )
    provider = target.provider
    declared = target if target.checksum_type is not None else provider
    return {
        "target_id": target.id,
        "provider_id": provider.id,
        "checksum_type": declared.checksum_type,
        "checksum": declared.checksum,
        "size": target.size,
    }


def finish_upload(
    unit: UnitOfWork, policy: Policy, token: str, sha256: str, size: int
) -> dict[str, Any]:
    """Attach the stored blob ``sha256`` to the target's provider and close the target.

    The provider is served once a box.inspect job, submitted here, verifies the file.
    """
    session = unit.session
    # Every change to a box locks the box's row first, and so does this: a
    # release, deletion or change that races this upload waits for it or is read by it.
    found = session.execute(
        select(UploadTarget.provider_id, UploadTarget.job_id).where(
            UploadTarget.token_hash == hash_token(token)
        )
    ).first()
    if found is not None:
        session.execute(
            select(Box.id)
            .join(Version, Version.box_id == Box.id)
            .join(Provider, Provider.version_id == Version.id)
            .where(Provider.id == found.provider_id)
            .with_for_update(of=Box, key_share=True)
        )
    if found is not None and found.job_id is not None:
        # Locked before the target, as an import's next attempt locks them,
        # so that a cancel either comes first and is read here or waits.
        job = session.get(Job, found.job_id, with_for_update=True)
        if job is None or job.state != JobState.RUNNING:
            state = job.state.value if job is not None else "deleted"
            raise Conflict(f"box.import job {found.job_id} is {state}; its file is not stored")
    target = _usable_target(session, token, lock=True)
    # Updating the row, not only skipping the conflict, takes its lock: a
    # garbage collection that selected it waits or skips it, and one that
    # already deleted it makes this insert a new row.
    session.execute(
        insert(Artifact)
        .values(sha256=sha256, size=size, created_at=utcnow())
        .on_conflict_do_update(index_elements=[Artifact.sha256], set_={"orphaned_at": None})
    )
    provider = target.provider
    provider.artifact_sha256 = sha256
    provider.original_url = None
    provider.state = ProviderState.UPLOADED
    provider.inspection = InspectionState.PENDING
    provider.last_error = None
    if target.checksum_type is not None:
        provider.checksum_type = target.checksum_type
        provider.checksum = target.checksum
    provider.updated_at = utcnow()
    target.completed_at = utcnow()
    target.artifact_sha256 = sha256
    session.flush()
    session.refresh(provider, ["artifact"])
    unit.emit("provider.uploaded", provider_event(provider))
    box = provider.version.box
    jobs.submit(
        unit,
        INSPECT_KIND,
        {"provider_id": provider.id, "sha256": sha256},
        policy,
        account_id=box.account_id,
        box_id=box.id,
    )
    return {"provider_id": provider.id, "sha256": sha256, "size": size}


def reject_upload(unit: UnitOfWork, token: str, reason: str) -> None:
    """Record why an upload was refused; the target stays usable for a new upload from byte 0."""
    target = _usable_target(unit.session, token, lock=True)
    target.size = None
    target.provider.last_error = reason


def complete_direct_upload(
    unit: UnitOfWork, urls: Urls, actor: access.Actor, token: str
) -> dict[str, Any]:
    """Confirm a direct upload (the client's callback) and return the provider."""
    target = unit.session.scalar(
        select(UploadTarget).where(UploadTarget.token_hash == hash_token(token))
    )
    if target is None:
        raise NotFound("upload not found; request a new upload URL")
    provider = target.provider
    box = provider.version.box
    access.require_box(
        unit.session, actor, box.account.username, box.name, Level.PUBLISH, lock=False
    )
    if target.completed_at is None:
        detail = f": {provider.last_error}" if provider.last_error else ""
        raise Unprocessable(f"the box file was not received{detail}")
    return provider_dict(urls, box, provider.version, provider)


def authorize_download(
    unit: UnitOfWork,
    actor: access.Actor,
    username: str,
    name: str,
    version: str,
    provider: str,
    architecture: str | None,
    count: bool = True,
) -> dict[str, Any]:
    """Return the blob to serve or the external URL to redirect to; ``count`` counts it."""
    found: Provider = require_provider(
        unit.session, actor, username, name, version, provider, architecture, Level.READ
    )
    if not found.served:
        if found.inspection == InspectionState.PENDING:
            raise NotFound(
                f"provider {provider} of version {version} has no verified box file yet; "
                "its inspection is still running"
            )
        if found.inspection == InspectionState.REJECTED:
            raise NotFound(
                f"provider {provider} of version {version} has no box file: inspection "
                f"rejected it because {found.last_error}"
            )
        raise NotFound(f"provider {provider} of version {version} has no box file yet")
    if found.version.status != VersionStatus.ACTIVE and not access.sees_unreleased(
        unit.session, actor, found.version.box.account
    ):
        raise NotFound(f"version {version} of box {username}/{name} not found")
    if count:
        # Increments in SQL, so that concurrent downloads never lose a count.
        # A download changes neither object, so updated_at keeps its value.
        # The box's row comes first, in the order every change to a box takes them.
        unit.session.execute(
            update(Box)
            .where(Box.id == found.version.box_id)
            .values(downloads=Box.downloads + 1, updated_at=Box.updated_at)
        )
        unit.session.execute(
            update(Provider)
            .where(Provider.id == found.id)
            .values(downloads=Provider.downloads + 1, updated_at=Provider.updated_at)
        )
    if found.original_url is not None:
        return {"url": found.original_url}
    artifact = found.artifact
    assert artifact is not None
    return {"sha256": artifact.sha256, "size": artifact.size}
