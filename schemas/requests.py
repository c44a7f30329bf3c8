"""Bodies of the public API's write requests, as the Vagrant Cloud clients send them."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.events import WEBHOOK_EVENTS
from schemas.fields import (
    Architecture,
    LongText,
    Name,
    ProviderName,
    ShortText,
    VersionString,
    check_checksum,
)


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


# The names a box body may give its privacy under; the first one present counts.
PRIVATE_ALIASES = AliasChoices("is_private", "private")


def _unwrap(data: Any, key: str) -> Any:
    # Vagrant Cloud accepts both {"box": {...}} and the flat form that
    # ruby-vagrant-cloud 3.x sends; nested wins when both are present.
    if isinstance(data, dict) and isinstance(data.get(key), dict):
        return {**{k: v for k, v in data.items() if k != key}, **data[key]}
    return data


class BoxCreate(Body):
    username: Name
    name: Name
    short_description: ShortText | None = None
    description: LongText | None = None
    # Responses name the field "private", so a body may use that name too.
    is_private: bool = Field(default=False, validation_alias=PRIVATE_ALIASES)

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        return _unwrap(data, "box")


class BoxUpdate(Body):
    name: Name | None = None
    short_description: ShortText | None = None
    description: LongText | None = None
    is_private: bool | None = Field(default=None, validation_alias=PRIVATE_ALIASES)

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        return _unwrap(data, "box")


class VersionCreate(Body):
    version: VersionString
    description: LongText | None = None

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        return _unwrap(data, "version")


class VersionUpdate(Body):
    version: VersionString | None = None
    description: LongText | None = None

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        return _unwrap(data, "version")


class ProviderFields(Body):
    url: str | None = Field(default=None, max_length=2048)
    checksum: str | None = Field(default=None, max_length=128)
    checksum_type: str | None = Field(default=None, max_length=16)
    architecture: Architecture | None = None
    default_architecture: bool | None = None

    @model_validator(mode="after")
    def check_pair(self) -> ProviderFields:
        if self.checksum == "":
            self.checksum = None
        if self.checksum_type == "":
            self.checksum_type = None
        check_checksum(self.checksum_type, self.checksum)
        if self.url is not None:
            _check_http_url(self.url)
        return self


class ProviderCreate(ProviderFields):
    name: ProviderName

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        return _unwrap(data, "provider")


class ProviderUpdate(ProviderFields):
    name: ProviderName | None = None

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        return _unwrap(data, "provider")


def _check_http_url(url: str) -> None:
    """Raise ValueError unless ``url`` is an http or https URL with a valid host and port."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("url must be an http or https URL")
    host = parts.hostname
    if not host:
        raise ValueError("url is missing a host")
    try:
        # The codec that name resolution uses: it rejects empty labels and
        # labels longer than 63 characters.
        host.encode("idna")
    except UnicodeError:
        raise ValueError(f"url has an invalid host name {host!r}") from None
    try:
        port = parts.port
    except ValueError:
        raise ValueError("url has an invalid port") from None
    if port == 0:
        raise ValueError("url has an invalid port 0")


class BoxImport(Body):
    """A request to fetch a provider's box file from ``url`` into binstore."""

    url: str = Field(min_length=1, max_length=2048)
    checksum: str | None = Field(default=None, max_length=128)
    checksum_type: str | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def check_fields(self) -> BoxImport:
        _check_http_url(self.url)
        check_checksum(self.checksum_type or None, self.checksum or None)
        return self


class WebhookCreate(Body):
    """A new webhook subscription of an account or a box."""

    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))

    @field_validator("url")
    @classmethod
    def check_url(cls, url: str) -> str:
        _check_http_url(url)
        # Listings show the URL to the account's managers, and the database
        # stores it as given, so it must not carry a password.
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "url must not contain a user name or password; receivers verify a "
                "delivery by its X-Atlas-Signature header"
            )
        return url

    @field_validator("events")
    @classmethod
    def check_events(cls, events: list[str]) -> list[str]:
        unknown = [event for event in events if event not in WEBHOOK_EVENTS]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} cannot be subscribed to; "
                f"use {', '.join(WEBHOOK_EVENTS)}"
            )
        return events


class Login(Body):
    login: str = Field(min_length=1, max_length=256)
    # A password is compared as it was set, spaces at either end included.
    password: Annotated[str, StringConstraints(strip_whitespace=False)] = Field(
        min_length=1, max_length=1024
    )


class TokenOptions(Body):
    description: ShortText | None = None


class TokenCreate(Body):
    user: Login
    token: TokenOptions = TokenOptions()
