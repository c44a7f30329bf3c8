"""Bodies of the public API's responses, the source of their schemas in the OpenAPI document.

The services build these bodies as plain dicts (``services.data.serialize``);
the models only describe them. They forbid extra fields because the Ruby
client rejects unknown keys in some objects, so a field added to a response
must be added here too, and the fuzzing tests check every response against
these schemas.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# ISO 8601 in UTC with milliseconds, such as 2024-01-31T12:00:00.000Z.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
VersionStatus = Literal["unreleased", "active", "revoked"]
HealthStatus = Literal["passing", "critical"]


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(Response):
    """Every error: 4xx for bad requests, 5xx when Atlas cannot complete one."""

    errors: list[str] = Field(min_length=1)
    success: Literal[False]


class Provider(Response):
    name: str
    architecture: str
    default_architecture: bool
    hosted: bool
    hosted_token: None
    original_url: str | None
    download_url: str | None
    checksum: str | None
    checksum_type: str | None
    created_at: Timestamp
    updated_at: Timestamp


class Version(Response):
    version: str
    number: str
    status: VersionStatus
    description_html: str
    description_markdown: str
    release_url: str
    revoke_url: str
    providers: list[Provider]
    created_at: Timestamp
    updated_at: Timestamp


class BoxSummary(Response):
    """A box without its versions, as search results and account pages list it."""

    tag: str
    name: str
    username: str
    short_description: str
    description_markdown: str
    description_html: str
    private: bool
    downloads: int
    created_at: Timestamp
    updated_at: Timestamp
    current_version: Version | None


class Box(BoxSummary):
    """A box with its versions; readers without a role on the owner see released ones only."""

    versions: list[Version]


class Account(Response):
    """A user or organization with the boxes the caller may see."""

    username: str
    avatar_url: None
    profile_html: str
    profile_markdown: str
    boxes: list[BoxSummary]


class SearchResults(Response):
    boxes: list[BoxSummary]


class ProviderDownloads(Response):
    name: str
    architecture: str
    downloads: int


class VersionDownloads(Response):
    version: str
    status: VersionStatus
    downloads: int
    providers: list[ProviderDownloads]


class BoxDownloads(Response):
    tag: str
    downloads: int
    versions: list[VersionDownloads]


class MetadataProvider(Response):
    name: str
    url: str
    checksum: str | None
    checksum_type: str | None
    architecture: str
    default_architecture: bool


class MetadataVersion(Response):
    version: str
    status: VersionStatus
    description_html: str
    description_markdown: str
    providers: list[MetadataProvider]


class BoxMetadata(Response):
    """The catalog `vagrant box add` reads: released versions with an uploaded box file."""

    name: str
    description: str
    short_description: str
    versions: list[MetadataVersion]


class UploadTarget(Response):
    upload_path: str


class DirectUploadTarget(Response):
    """A target for ``vagrant cloud publish --direct-upload``: PUT the file, then the callback."""

    upload_path: str
    callback: str


class TokenUser(Response):
    username: str


class TokenInfo(Response):
    """An API token without its secret."""

    id: int
    description: str
    token_hash: str
    created_at: Timestamp
    last_used_at: Timestamp | None
    user: TokenUser


class IssuedToken(TokenInfo):
    """A new API token; ``token`` is the secret, returned this once only."""

    token: str


class TokenList(Response):
    tokens: list[TokenInfo]


class Membership(Response):
    organization: str
    username: str
    role: Literal["owner", "admin", "member"]
    created_at: Timestamp


class Organization(Response):
    username: str
    created_at: Timestamp
    members: list[Membership]


class OrganizationList(Response):
    organizations: list[Membership]


class InstanceState(Response):
    """One instance in the suite's health report; ``address`` comes from Consul only."""

    id: str
    address: str | None = None
    status: HealthStatus | Literal["warning"]
    output: str


class ServiceState(Response):
    status: HealthStatus
    instances: list[InstanceState]


class SuiteHealth(Response):
    status: HealthStatus
    source: Literal["consul", "rpc"]
    services: dict[str, ServiceState]


class Check(Response):
    status: HealthStatus
    output: str


class InstanceHealth(Response):
    status: HealthStatus
    instance: str
    checks: dict[str, Check]
