"""Provider data for box.inspect, and the storage of its verdict."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.toolkit.errors import NotFound

from .boxes import provider_event
from .database import UnitOfWork
from .models import InspectionState, Provider, utcnow


def _provider(session: Session, provider_id: int, lock: bool = False) -> Provider:
    provider = session.get(Provider, provider_id, with_for_update=lock)
    if provider is None:
        raise NotFound(f"provider {provider_id} not found; it was deleted")
    return provider


def _judged_fields(provider: Provider) -> dict[str, Any]:
    """Return the provider's fields that box.inspect checks its file against."""
    return {
        "provider": provider.name,
        "architecture": provider.architecture,
        "checksum_type": provider.checksum_type,
        "checksum": provider.checksum,
    }


def target(session: Session, provider_id: int) -> dict[str, Any]:
    """Return the stored file of a provider and what its box must declare."""
    provider = _provider(session, provider_id)
    artifact = provider.artifact
    return {
        **_judged_fields(provider),
        "sha256": artifact.sha256 if artifact is not None else None,
        "size": artifact.size if artifact is not None else None,
    }


def record(
    unit: UnitOfWork,
    provider_id: int,
    sha256: str,
    verified: bool,
    reason: str | None,
    checked: dict[str, Any] | None = None,
) -> bool:
    """Store the verdict on ``sha256``; return False if it no longer applies, changing nothing.

    ``checked`` contains what the file was judged against, as ``target``
    returned it. The verdict no longer applies once the provider has another
    file or, with ``checked``, another name, architecture or checksum: the
    job that the change submitted judges the file again.
    """
    provider = _provider(unit.session, provider_id, lock=True)
    if provider.artifact_sha256 != sha256:
        return False
    if checked is not None and any(
        checked.get(key) != value for key, value in _judged_fields(provider).items()
    ):
        return False
    provider.inspection = InspectionState.VERIFIED if verified else InspectionState.REJECTED
    provider.last_error = None if verified else reason
    provider.updated_at = utcnow()
    unit.emit("provider.inspected", {**provider_event(provider), "verified": verified})
    return True
