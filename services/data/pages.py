"""The web pages' view of a box, with more than the Vagrant Cloud field sets.

The API's objects must keep Vagrant Cloud's exact fields, so the box page
gets its own view: file sizes, download counts per provider, why an upload
was rejected, and what the viewer may do. Readers see released versions
only; publishers also see unreleased and revoked ones. Members of the
box's account also see each provider's latest box.inspect job. The job
page's view adds the actions that the viewer may take on the job.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from . import access, jobs
from .access import Level
from .boxes import INSPECT_KIND
from .models import Account, Box, Job, Provider, Version, VersionStatus
from .serialize import (
    Urls,
    box_dict,
    description_html,
    provider_dict,
    sorted_versions,
    timestamp,
)

# The latest inspection job of each provider, keyed by provider id, or None
# when the viewer may not see the box's jobs.
Inspections = dict[int, dict[str, Any]] | None


def _latest_inspections(session: Session, box: Box) -> dict[int, dict[str, Any]]:
    """Return the newest box.inspect job of each of the box's providers, in one query."""
    provider_id = Job.payload["provider_id"].as_integer()
    rows = session.execute(
        select(provider_id, Job.id, Job.state)
        .where(Job.box_id == box.id, Job.kind == INSPECT_KIND)
        .ext(distinct_on(provider_id))
        .order_by(provider_id, Job.id.desc())
    ).all()
    return {found: {"id": job_id, "state": state.value} for found, job_id, state in rows}


def _provider_view(
    urls: Urls, box: Box, version: Version, provider: Provider, inspections: Inspections
) -> dict[str, Any]:
    artifact = provider.artifact
    view = {
        **provider_dict(urls, box, version, provider),
        "state": provider.state.value,
        "size": artifact.size if artifact else None,
        "downloads": provider.downloads,
        "last_error": provider.last_error,
    }
    if inspections is not None:
        view["inspection"] = provider.inspection.value if provider.inspection else None
        view["inspection_job"] = inspections.get(provider.id)
    return view


def _version_view(
    urls: Urls, box: Box, version: Version, inspections: Inspections
) -> dict[str, Any]:
    return {
        "version": version.version,
        "status": version.status.value,
        "description_html": description_html(version),
        "created_at": timestamp(version.created_at),
        "released_at": timestamp(version.released_at),
        "revoked_at": timestamp(version.revoked_at),
        "providers": [
            _provider_view(urls, box, version, provider, inspections)
            for provider in sorted(version.providers, key=lambda p: (p.name, p.architecture))
        ],
    }


def describe_box(
    session: Session, urls: Urls, actor: access.Actor, username: str, name: str
) -> dict[str, Any]:
    """Return the box page's view of ``username/name`` for ``actor``."""
    box = access.require_box(session, actor, username, name)
    level = access.level_on(session, actor, box.account)
    can_publish = level is not None and level >= Level.PUBLISH
    # Jobs are visible to the members of the account they belong to.
    can_see_jobs = level is not None
    inspections = _latest_inspections(session, box) if can_see_jobs else None
    versions = [
        version
        for version in sorted_versions(box)
        if can_publish or version.status == VersionStatus.ACTIVE
    ]
    return {
        "box": box_dict(urls, box, with_versions=False),
        "versions": [_version_view(urls, box, version, inspections) for version in versions],
        "can_publish": can_publish,
        "can_manage": level is not None and level >= Level.MANAGE,
        "can_see_jobs": can_see_jobs,
    }


def describe_job(session: Session, actor: access.Actor, job_id: int) -> dict[str, Any]:
    """Return the job page's view: the job with its history, and what ``actor`` may do to it.

    Raises ``NotFound`` for a job of an account that ``actor`` is no member of.
    """
    job = jobs.describe(session, access.require_actor(actor), job_id)
    account = session.scalar(
        select(Account).join(Job, Job.account_id == Account.id).where(Job.id == job_id)
    )
    level = access.level_on(session, actor, account) if account is not None else None
    can_act = level is not None and level >= jobs.acting_level(job["kind"])
    return {
        "job": job,
        "actions": jobs.user_triggers(job["kind"], job["state"]) if can_act else [],
    }
