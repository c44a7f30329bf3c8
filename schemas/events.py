"""Payloads of the events the data service publishes on the ``data.events`` exchange.

Every payload carries ``schema_version``; a change that removes or retypes a
field raises it, so subscribers can tell which form they receive.
"""

from __future__ import annotations

from pydantic import BaseModel

SCHEMA_VERSION = 1


class Event(BaseModel):
    schema_version: int = SCHEMA_VERSION


class BoxEvent(Event):
    """box.created, box.updated, box.deleted"""

    tag: str
    username: str
    name: str
    private: bool


class VersionEvent(BoxEvent):
    """version.created, version.updated, version.released, version.revoked, version.deleted"""

    version: str


class ProviderEvent(VersionEvent):
    """provider.created, provider.updated, provider.uploaded, provider.deleted"""

    provider: str
    architecture: str
    sha256: str | None = None
    size: int | None = None


class InspectionEvent(ProviderEvent):
    """provider.inspected: box.inspect verified or rejected the provider's file"""

    verified: bool


class JobEvent(Event):
    """job.submitted (a failed job retried by hand), job.finished"""

    job_id: int
    kind: str
    state: str
    attempt: int
    box_id: int | None = None
    account_id: int | None = None


class JobsSubmittedEvent(Event):
    """jobs.submitted: the pending jobs that one submit call created, all of one kind"""

    kind: str
    job_ids: list[int]
    box_id: int | None = None
    account_id: int | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    "box.created": BoxEvent,
    "box.updated": BoxEvent,
    "box.deleted": BoxEvent,
    "version.created": VersionEvent,
    "version.updated": VersionEvent,
    "version.released": VersionEvent,
    "version.revoked": VersionEvent,
    "version.deleted": VersionEvent,
    "provider.created": ProviderEvent,
    "provider.updated": ProviderEvent,
    "provider.uploaded": ProviderEvent,
    "provider.deleted": ProviderEvent,
    "provider.inspected": InspectionEvent,
    "jobs.submitted": JobsSubmittedEvent,
    "job.submitted": JobEvent,
    "job.finished": JobEvent,
}

# Events that webhook subscriptions may name. A subscription of an account
# receives them for every box of the account; job.finished also for jobs
# that concern the account but no box.
WEBHOOK_EVENTS = ("version.released", "version.revoked", "provider.uploaded", "job.finished")
