"""SQLAlchemy models of everything Atlas stores.

Users and organizations share one namespace, as on Vagrant Cloud, so both
are rows of ``accounts`` told apart by ``kind``; boxes belong to an account.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


Timestamp = DateTime(timezone=True)


def trigram_index(name: str, expression: Any) -> Index:
    """Return a GIN index of ``expression``'s trigrams, for LIKE '%text%' matches.

    It needs PostgreSQL's pg_trgm extension, which the migrations create.
    """
    return Index(
        name,
        expression.label("expression"),
        postgresql_using="gin",
        postgresql_ops={"expression": "gin_trgm_ops"},
    )


class AccountKind(enum.StrEnum):
    USER = "user"
    ORGANIZATION = "organization"


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class VersionStatus(enum.StrEnum):
    UNRELEASED = "unreleased"
    ACTIVE = "active"
    REVOKED = "revoked"


class ProviderState(enum.StrEnum):
    # No file yet: created, or the last upload failed.
    PENDING = "pending"
    # The file is stored (or the provider points at an external URL).
    UPLOADED = "uploaded"


class InspectionState(enum.StrEnum):
    # A box.inspect job has yet to read the stored file.
    PENDING = "pending"
    # The file is a box for this provider and architecture; it may be served.
    VERIFIED = "verified"
    # The file is not a box for this provider; ``last_error`` gives the reason.
    REJECTED = "rejected"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AccountKind] = mapped_column(
        Enum(AccountKind, name="account_kind", values_callable=lambda e: [m.value for m in e])
    )
    username: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    # argon2id hash; organizations and token-only users have none.
    password_hash: Mapped[str | None] = mapped_column(String(256))
    profile_markdown: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # Names are unique regardless of case, so "Acme" cannot shadow "acme".
        Index("uq_accounts_username_lower", func.lower(username), unique=True),
        # Serves substring matches of owner names in box search (pg_trgm).
        trigram_index("ix_accounts_username_trgm", func.lower(username)),
    )


class Membership(Base):
    __tablename__ = "memberships"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="membership_role", values_callable=lambda e: [m.value for m in e])
    )
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    user: Mapped[Account] = relationship(foreign_keys=[user_id])
    organization: Mapped[Account] = relationship(foreign_keys=[organization_id])

    # The primary key starts with organization_id; this finds a user's organizations.
    __table_args__ = (Index("ix_memberships_user_id", user_id),)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # sha256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    account: Mapped[Account] = relationship()


class WebSession(Base):
    """A browser's signed-in session; the cookie carries the secret, this row its hash."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    # sha256 of the cookie's secret, as for API tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    account: Mapped[Account] = relationship()


class LoginFailure(Base):
    """A sign-in with a password that failed, or is still being checked, counted for one window.

    Rows are keyed by the login name as typed, whether or not an account has
    that name, so that the limits reveal nothing about which accounts exist.
    """

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # sha256 of the lowercased login name; a password typed into the name
    # field by mistake is not stored.
    login_hash: Mapped[str] = mapped_column(String(64))
    # The client's IP address, or its /64 network for IPv6; None when unknown.
    client_address: Mapped[str | None] = mapped_column(String(64))
    failed_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (
        Index("ix_login_failures_login_hash_failed_at", login_hash, failed_at),
        Index("ix_login_failures_client_address_failed_at", client_address, failed_at),
        Index("ix_login_failures_failed_at", failed_at),
    )


class Box(Base):
    __tablename__ = "boxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    short_description: Mapped[str | None] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    # The description rendered from Markdown when it is written, so that
    # reads, which are many, do not render it again.
    description_html: Mapped[str | None] = mapped_column(Text)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    downloads: Mapped[int] = mapped_column(BigInteger, default=0)
    # Whether a version of the box is released (active). A trigger on versions
    # keeps it current whatever code changes a version, so that search filters
    # on it without joining versions; Atlas code only reads it.
    released: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    versions: Mapped[list[Version]] = relationship(
        back_populates="box", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("uq_boxes_account_id_name_lower", account_id, func.lower(name), unique=True),
        # Box search matches substrings of these expressions (pg_trgm) and
        # pages through results in the order of these columns.
        trigram_index("ix_boxes_name_trgm", func.lower(name)),
        trigram_index("ix_boxes_short_description_trgm", func.lower(short_description)),
        Index("ix_boxes_downloads", downloads, "id"),
        Index("ix_boxes_created_at", created_at, "id"),
        Index("ix_boxes_updated_at", updated_at, "id"),
    )


class Version(Base):
    __tablename__ = "versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("boxes.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    status: Mapped[VersionStatus] = mapped_column(
        Enum(
            VersionStatus,
            name="version_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        default=VersionStatus.UNRELEASED,
    )
    description: Mapped[str | None] = mapped_column(Text)
    # Rendered when written, as the box's description is.
    description_html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    released_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    box: Mapped[Box] = relationship(back_populates="versions")
    providers: Mapped[list[Provider]] = relationship(
        back_populates="version", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("box_id", "version"),
        # Box search keeps only boxes with a released version.
        Index(
            "ix_versions_box_id_active",
            "box_id",
            postgresql_where=text("status = 'active'"),
        ),
    )


class Artifact(Base):
    """A stored file, addressed by the sha256 of its content."""

    __tablename__ = "artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    # When garbage collection first found no provider referring to the file;
    # cleared when one refers to it again. The file is deleted a grace period later.
    orphaned_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    architecture: Mapped[str] = mapped_column(String(16))
    default_architecture: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[ProviderState] = mapped_column(
        Enum(
            ProviderState,
            name="provider_state",
            values_callable=lambda e: [m.value for m in e],
        ),
        default=ProviderState.PENDING,
    )
    # An external download URL; hosted providers have none.
    original_url: Mapped[str | None] = mapped_column(String(2048))
    # The checksum the publisher declared, which every upload must match.
    checksum: Mapped[str | None] = mapped_column(String(128))
    checksum_type: Mapped[str | None] = mapped_column(String(16))
    artifact_sha256: Mapped[str | None] = mapped_column(
        ForeignKey("artifacts.sha256", ondelete="RESTRICT"), index=True
    )
    # Whether the stored file passed box.inspect; None for external URLs,
    # which Atlas does not fetch, and for providers without a file.
    inspection: Mapped[InspectionState | None] = mapped_column(
        Enum(
            InspectionState,
            name="inspection_state",
            values_callable=lambda e: [m.value for m in e],
        )
    )
    # Why the last upload or inspection was rejected, shown to the publisher.
    last_error: Mapped[str | None] = mapped_column(Text)
    downloads: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    version: Mapped[Version] = relationship(back_populates="providers")
    artifact: Mapped[Artifact | None] = relationship()

    __table_args__ = (UniqueConstraint("version_id", "name", "architecture"),)

    @property
    def served_checksum(self) -> tuple[str | None, str | None]:
        """Return the checksum type and value that clients check the file with.

        That is the declared checksum, else the sha256 of the stored file.
        """
        if self.checksum_type is not None:
            return self.checksum_type, self.checksum
        if self.artifact_sha256 is not None:
            return "sha256", self.artifact_sha256
        return None, None

    @property
    def served(self) -> bool:
        """Whether metadata lists the provider and downloads may fetch its file."""
        if self.state != ProviderState.UPLOADED:
            return False
        return self.original_url is not None or self.inspection == InspectionState.VERIFIED


class UploadTarget(Base):
    """A single-use, expiring permission to PUT one provider's file to binstore."""

    __tablename__ = "upload_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    # sha256 of the random part of the upload URL.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    direct: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    # Total bytes of a resumable upload, from the Content-Range of its first part.
    size: Mapped[int | None] = mapped_column(BigInteger)
    # Set when binstore stored the file; the target cannot be used again.
    completed_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    artifact_sha256: Mapped[str | None] = mapped_column(
        ForeignKey("artifacts.sha256", ondelete="SET NULL")
    )
    # The box.import job that uploads through this target. Its token changes
    # with each attempt, while binstore keeps the received bytes under the
    # target's id, so a later attempt continues the upload.
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    # The user who requested the target. Their role is checked again when
    # the file arrives, so a member removed since can no longer upload.
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # A checksum declared for this upload only (by an import); binstore checks
    # it instead of the provider's, which it replaces once the file is stored.
    checksum: Mapped[str | None] = mapped_column(String(128))
    checksum_type: Mapped[str | None] = mapped_column(String(16))

    provider: Mapped[Provider] = relationship()


class OutboxEvent(Base):
    """An event written in the transaction that caused it, published after commit.

    A relay republishes rows left unpublished by a crash between the commit
    and the publish, so subscribers may see an event twice but never miss one.
    """

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        Index(
            "ix_outbox_events_unpublished",
            "id",
            postgresql_where=published_at.is_(None),
        ),
        CheckConstraint("event_type <> ''", name="event_type_not_empty"),
    )


class JobState(enum.StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

JobStateColumn = Enum(JobState, name="job_state", values_callable=lambda e: [m.value for m in e])


class Job(Base):
    """A unit of background work whose state lives here; the broker only carries it.

    ``attempt`` counts the times a worker started the job. A queue message
    names the attempt it would start, so a duplicate or stale message cannot
    start the job a second time.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    state: Mapped[JobState] = mapped_column(JobStateColumn, default=JobState.PENDING)
    attempt: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int]
    # When a retrying job is due to be queued again.
    run_after: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    # A running job whose lease passes without a heartbeat is presumed lost with its worker.
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    worker: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The account whose members see and manage the job, and the box it concerns.
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    box_id: Mapped[int | None] = mapped_column(
        ForeignKey("boxes.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    box: Mapped[Box | None] = relationship()
    history: Mapped[list[JobTransition]] = relationship(
        order_by="JobTransition.id", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        # The dispatcher scans the jobs of one state, oldest first.
        Index("ix_jobs_state_id", "state", "id"),
        Index("ix_jobs_kind_state", "kind", "state"),
        CheckConstraint("attempt >= 0 AND max_attempts >= 1", name="attempts_valid"),
    )


class JobTransition(Base):
    """One recorded state change of a job."""

    __tablename__ = "job_transitions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[JobState] = mapped_column(JobStateColumn)
    to_state: Mapped[JobState] = mapped_column(JobStateColumn)
    trigger: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int]
    at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    # Who caused it: a username, "dispatcher" or a worker's name.
    actor: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)


class Webhook(Base):
    """A subscription that POSTs events of an account's boxes, or of one box, to a URL."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    # None subscribes to every box of the account.
    box_id: Mapped[int | None] = mapped_column(
        ForeignKey("boxes.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    # The signing secret, AES-GCM encrypted under a key derived from the
    # secret key; workers decrypt it to sign each delivery.
    secret_sealed: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    account: Mapped[Account] = relationship()
    box: Mapped[Box | None] = relationship()
