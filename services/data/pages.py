"""The web pages' view of a box, with more than the Vagrant Cloud field sets.

The API's objects must keep Vagrant Cloud's exact fields, so the box page
gets its own view: file sizes, download counts per provider, why an upload
was rejected, and what the viewer may do. Readers see released versions
only; publishers also see unreleased and revoked ones.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from . import access
from .access import Level
from .models import Box, Provider, Version, VersionStatus
from .serialize import Urls, box_dict, provider_dict, render_markdown, sorted_versions, timestamp


def _provider_view(urls: Urls, box: Box, version: Version, provider: Provider) -> dict[str, Any]:
    artifact = provider.artifact
    return {
        **provider_dict(urls, box, version, provider),
        "state": provider.state.value,
        "size": artifact.size if artifact else None,
        "downloads": provider.downloads,
        "last_error": provider.last_error,
    }


def _version_view(urls: Urls, box: Box, version: Version) -> dict[str, Any]:
    return {
        "version": version.version,
        "status": version.status.value,
        "description_html": render_markdown(version.description),
        "created_at": timestamp(version.created_at),
        "released_at": timestamp(version.released_at),
        "revoked_at": timestamp(version.revoked_at),
        "providers": [
            _provider_view(urls, box, version, provider)
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
    versions = [
        version
        for version in sorted_versions(box)
        if can_publish or version.status == VersionStatus.ACTIVE
    ]
    return {
        "box": box_dict(urls, box, with_versions=False),
        "versions": [_version_view(urls, box, version) for version in versions],
        "can_publish": can_publish,
        "can_manage": level is not None and level >= Level.MANAGE,
    }
