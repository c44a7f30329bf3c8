"""Boxes, their versions and providers: creation, changes and the release lifecycle.

A version goes unreleased → active → revoked and never back; releasing
needs at least one provider with a file.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas import requests as bodies
from schemas.events import BoxEvent, ProviderEvent, VersionEvent
from schemas.fields import DEFAULT_ARCHITECTURE
from schemas.validation import validate as parse
from services.toolkit.errors import NotFound, Unprocessable

from . import access, jobs
from .access import Level
from .database import UnitOfWork
from .models import (
    Box,
    InspectionState,
    Provider,
    ProviderState,
    Version,
    VersionStatus,
    utcnow,
)
from .serialize import (
    Description,
    Urls,
    box_dict,
    downloads_dict,
    metadata_dict,
    provider_dict,
    version_dict,
)

# The job that verifies a provider's stored file before it is served.
INSPECT_KIND = jobs.INSPECT_KIND


def flush_unique(session: Session, message: str) -> None:
    """Flush pending changes, raising ``Unprocessable(message)`` if a unique key clashes.

    The message is built before the flush because a failed flush expires
    every loaded object, and reading one afterwards raises.
    """
    try:
        session.flush()
    except IntegrityError as exc:
        raise Unprocessable(message) from exc


def box_event(box: Box) -> dict[str, Any]:
    return BoxEvent(
        tag=f"{box.account.username}/{box.name}",
        username=box.account.username,
        name=box.name,
        private=box.private,
    ).model_dump()


def version_event(version: Version) -> dict[str, Any]:
    return VersionEvent(**box_event(version.box), version=version.version).model_dump()


def provider_event(provider: Provider) -> dict[str, Any]:
    artifact = provider.artifact
    return ProviderEvent(
        **version_event(provider.version),
        provider=provider.name,
        architecture=provider.architecture,
        sha256=artifact.sha256 if artifact else None,
        size=artifact.size if artifact else None,
    ).model_dump()


# Boxes


def create_box(unit: UnitOfWork, urls: Urls, actor: access.Actor, fields: dict[str, Any]) -> dict:
    request = parse(bodies.BoxCreate, fields)
    session = unit.session
    account = access.require_account(session, request.username)
    access.check_level(session, actor, account, Level.MANAGE)
    box = Box(
        account=account,
        name=request.name,
        short_description=request.short_description,
        private=request.is_private,
    )
    Description.render(request.description).set_on(box)
    session.add(box)
    flush_unique(session, f"box {account.username}/{request.name} already exists")
    unit.emit("box.created", box_event(box))
    return box_dict(urls, box)


def get_box(session: Session, urls: Urls, actor: access.Actor, username: str, name: str) -> dict:
    box = access.read_box_tree(session, actor, username, name)
    return box_dict(urls, box, with_unreleased=access.sees_unreleased(session, actor, box.account))


def box_downloads(
    session: Session, actor: access.Actor, username: str, name: str
) -> dict[str, Any]:
    box = access.read_box_tree(session, actor, username, name)
    return downloads_dict(box, with_unreleased=access.sees_unreleased(session, actor, box.account))


def update_box(
    unit: UnitOfWork, urls: Urls, actor: access.Actor, username: str, name: str, fields: dict
) -> dict:
    request = parse(bodies.BoxUpdate, fields)
    description = Description.render(request.description)
    box = access.require_box(unit.session, actor, username, name, Level.MANAGE)
    if request.name is not None:
        box.name = request.name
    if request.short_description is not None:
        box.short_description = request.short_description
    if request.description is not None:
        description.set_on(box)
    if request.is_private is not None:
        box.private = request.is_private
    flush_unique(unit.session, f"box {username}/{request.name} already exists")
    unit.emit("box.updated", box_event(box))
    return box_dict(urls, box)


def delete_box(unit: UnitOfWork, urls: Urls, actor: access.Actor, username: str, name: str) -> dict:
    box = access.require_box(unit.session, actor, username, name, Level.MANAGE)
    result = box_dict(urls, box)
    unit.emit("box.deleted", box_event(box))
    unit.session.delete(box)
    return result


# Versions


def create_version(
    unit: UnitOfWork, urls: Urls, actor: access.Actor, username: str, name: str, fields: dict
) -> dict:
    request = parse(bodies.VersionCreate, fields)
    description = Description.render(request.description)
    box = access.require_box(unit.session, actor, username, name, Level.PUBLISH)
    clash = f"version {request.version} of box {box.account.username}/{box.name} already exists"
    version = Version(box=box, version=request.version)
    description.set_on(version)
    unit.session.add(version)
    flush_unique(unit.session, clash)
    box.updated_at = utcnow()
    unit.emit("version.created", version_event(version))
    return version_dict(urls, box, version)


def get_version(
    session: Session, urls: Urls, actor: access.Actor, username: str, name: str, version: str
) -> dict:
    found = access.require_version(session, actor, username, name, version, Level.READ)
    return version_dict(urls, found.box, found)


def update_version(
    unit: UnitOfWork,
    urls: Urls,
    actor: access.Actor,
    username: str,
    name: str,
    version: str,
    fields: dict,
) -> dict:
    request = parse(bodies.VersionUpdate, fields)
    description = Description.render(request.description)
    found = access.require_version(unit.session, actor, username, name, version, Level.PUBLISH)
    if request.version is not None and request.version != found.version:
        if found.status != VersionStatus.UNRELEASED:
            raise Unprocessable(
                f"version {found.version} is {found.status.value}; only an "
                "unreleased version can be renumbered"
            )
        found.version = request.version
    if request.description is not None:
        description.set_on(found)
    flush_unique(unit.session, f"version {request.version} already exists")
    unit.emit("version.updated", version_event(found))
    return version_dict(urls, found.box, found)


def delete_version(
    unit: UnitOfWork, urls: Urls, actor: access.Actor, username: str, name: str, version: str
) -> dict:
    found = access.require_version(unit.session, actor, username, name, version, Level.PUBLISH)
    access.check_released_change(unit.session, actor, found, "delete")
    result = version_dict(urls, found.box, found)
    unit.emit("version.deleted", version_event(found))
    unit.session.delete(found)
    return result


def release_version(
    unit: UnitOfWork, urls: Urls, actor: access.Actor, username: str, name: str, version: str
) -> dict:
    found = access.require_version(unit.session, actor, username, name, version, Level.PUBLISH)
    if found.status == VersionStatus.ACTIVE:
        raise Unprocessable(f"version {found.version} is already released")
    if found.status == VersionStatus.REVOKED:
        raise Unprocessable(f"version {found.version} was revoked and cannot be released again")
    if not any(
        p.state == ProviderState.UPLOADED and p.inspection != InspectionState.REJECTED
        for p in found.providers
    ):
        raise Unprocessable(
            f"version {found.version} has no provider with a box file that inspection "
            "accepted or is still checking; upload a box for one of its providers before releasing"
        )
    found.status = VersionStatus.ACTIVE
    found.released_at = utcnow()
    found.box.updated_at = found.released_at
    unit.emit("version.released", version_event(found))
    return version_dict(urls, found.box, found)


def revoke_version(
    unit: UnitOfWork, urls: Urls, actor: access.Actor, username: str, name: str, version: str
) -> dict:
    found = access.require_version(unit.session, actor, username, name, version, Level.PUBLISH)
    if found.status != VersionStatus.ACTIVE:
        raise Unprocessable(
            f"version {found.version} is {found.status.value}; only a released version "
            "can be revoked"
        )
    found.status = VersionStatus.REVOKED
    found.revoked_at = utcnow()
    found.box.updated_at = found.revoked_at
    unit.emit("version.revoked", version_event(found))
    return version_dict(urls, found.box, found)


# Providers


def find_provider(version: Version, name: str, architecture: str | None) -> Provider:
    """Return the version's provider ``name``, on ``architecture`` or the default one."""
    candidates = [p for p in version.providers if p.name == name]
    if architecture is not None:
        candidates = [p for p in candidates if p.architecture == architecture]
    elif len(candidates) > 1:
        candidates = [p for p in candidates if p.default_architecture] or candidates[:1]
    if not candidates:
        on = f" on {architecture}" if architecture else ""
        raise NotFound(f"provider {name}{on} of version {version.version} not found")
    return candidates[0]


def require_provider(
    session: Session,
    actor: access.Actor,
    username: str,
    name: str,
    version: str,
    provider: str,
    architecture: str | None,
    needed: Level,
) -> Provider:
    found = access.require_version(session, actor, username, name, version, needed)
    return find_provider(found, provider, architecture)


def _apply_provider_fields(provider: Provider, request: bodies.ProviderFields) -> None:
    if request.checksum_type is not None:
        provider.checksum_type = request.checksum_type
        provider.checksum = (request.checksum or "").lower()
    if request.url is not None:
        provider.original_url = request.url
        provider.artifact_sha256 = None
        provider.inspection = None
        provider.state = ProviderState.UPLOADED
    if request.default_architecture is not None:
        provider.default_architecture = request.default_architecture


def _inspected_fields(provider: Provider) -> tuple[str, str, str | None, str | None]:
    """Return what box.inspect checks a provider's file against."""
    return (provider.name, provider.architecture, provider.checksum_type, provider.checksum)


def _clear_other_defaults(version: Version, default: Provider) -> None:
    """Make ``default`` the only default architecture of its provider name in ``version``."""
    for other in version.providers:
        if other is not default and other.name == default.name:
            other.default_architecture = False


def create_provider(
    unit: UnitOfWork,
    urls: Urls,
    actor: access.Actor,
    username: str,
    name: str,
    version: str,
    fields: dict,
) -> dict:
    request = parse(bodies.ProviderCreate, fields)
    found = access.require_version(unit.session, actor, username, name, version, Level.PUBLISH)
    if found.status == VersionStatus.REVOKED:
        raise Unprocessable(f"version {found.version} was revoked; providers cannot be added")
    access.check_released_change(unit.session, actor, found, "add providers to")
    architecture = request.architecture or DEFAULT_ARCHITECTURE
    clash = f"provider {request.name} on {architecture} already exists for version {found.version}"
    # The first architecture of a provider is its default unless the request sets one.
    first_of_name = not any(p.name == request.name for p in found.providers)
    provider = Provider(
        version=found,
        name=request.name,
        architecture=architecture,
        default_architecture=True,
        state=ProviderState.PENDING,
    )
    _apply_provider_fields(provider, request)
    if request.default_architecture is None:
        provider.default_architecture = first_of_name
    elif request.default_architecture:
        _clear_other_defaults(found, provider)
    unit.session.add(provider)
    flush_unique(unit.session, clash)
    unit.emit("provider.created", provider_event(provider))
    return provider_dict(urls, found.box, found, provider)


def get_provider(
    session: Session,
    urls: Urls,
    actor: access.Actor,
    username: str,
    name: str,
    version: str,
    provider: str,
    architecture: str | None,
) -> dict:
    found = require_provider(
        session, actor, username, name, version, provider, architecture, Level.READ
    )
    return provider_dict(urls, found.version.box, found.version, found)


def update_provider(
    unit: UnitOfWork,
    urls: Urls,
    actor: access.Actor,
    username: str,
    name: str,
    version: str,
    provider: str,
    architecture: str | None,
    fields: dict,
) -> dict:
    request = parse(bodies.ProviderUpdate, fields)
    found = require_provider(
        unit.session, actor, username, name, version, provider, architecture, Level.PUBLISH
    )
    access.check_released_change(unit.session, actor, found.version, "change providers of")
    inspected = _inspected_fields(found)
    if request.name is not None:
        found.name = request.name
    if request.architecture is not None:
        found.architecture = request.architecture
    _apply_provider_fields(found, request)
    if request.default_architecture:
        _clear_other_defaults(found.version, found)
    flush_unique(unit.session, f"provider {found.name} on {found.architecture} already exists")
    if found.artifact_sha256 is not None and _inspected_fields(found) != inspected:
        # The stored file was judged against the old name, architecture or
        # checksum, so it is not served until it passes against the new ones.
        found.inspection = InspectionState.PENDING
        found.last_error = None
        box = found.version.box
        jobs.submit(
            unit,
            INSPECT_KIND,
            {"provider_id": found.id, "sha256": found.artifact_sha256},
            unit.policy,
            account_id=box.account_id,
            box_id=box.id,
        )
    unit.emit("provider.updated", provider_event(found))
    return provider_dict(urls, found.version.box, found.version, found)


def delete_provider(
    unit: UnitOfWork,
    urls: Urls,
    actor: access.Actor,
    username: str,
    name: str,
    version: str,
    provider: str,
    architecture: str | None,
) -> dict:
    found = require_provider(
        unit.session, actor, username, name, version, provider, architecture, Level.PUBLISH
    )
    access.check_released_change(unit.session, actor, found.version, "delete providers of")
    result = provider_dict(urls, found.version.box, found.version, found)
    unit.emit("provider.deleted", provider_event(found))
    unit.session.delete(found)
    return result


# Metadata


def box_metadata(
    session: Session, urls: Urls, actor: access.Actor, username: str, name: str
) -> dict:
    box = access.read_box_tree(session, actor, username, name)
    return metadata_dict(urls, box)
