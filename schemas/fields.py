"""Constrained field types for names, versions and checksums."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# Names of users, organizations and boxes appear in URL paths, so they admit
# no separators, no leading dot and only ASCII (no look-alike characters).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# An account's name is the first segment of its boxes' paths, so these names,
# which are the gateway's own top-level routes, cannot be taken (in any case).
RESERVED_ACCOUNT_NAMES = frozenset({"api", "health", "metrics", "openapi.json"})
PROVIDER_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
ARCHITECTURE_PATTERN = r"^[a-z0-9][a-z0-9_]{0,15}$"

# Vagrant compares box versions as dotted numbers, optionally with a
# pre-release suffix after a dash ("1.2.3", "20240101.0", "2.0.0-rc1").
# Vagrant parses every version in box metadata with Ruby's Gem::Version and
# rejects the whole document if one fails (vagrant 2.3.4,
# lib/vagrant/box_metadata.rb), so the suffix admits only what Gem::Version
# accepts: dot-separated parts of letters, digits and dashes.
VERSION_PATTERN = re.compile(r"^\d{1,9}(\.\d{1,9}){0,3}(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")

CHECKSUM_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha384": 96, "sha512": 128}
CHECKSUM_TYPES = tuple(CHECKSUM_LENGTHS)

DEFAULT_ARCHITECTURE = "unknown"


def _check_name(value: str) -> str:
    if value.endswith(".") or ".." in value:
        raise ValueError("must not end with a dot or contain two dots in a row")
    return value


def _check_version(value: str) -> str:
    if not VERSION_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a valid version; use dotted numbers such as 1.0.0")
    return value


Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN), AfterValidator(_check_name)]
ProviderName = Annotated[str, StringConstraints(pattern=PROVIDER_PATTERN)]
Architecture = Annotated[str, StringConstraints(pattern=ARCHITECTURE_PATTERN)]
VersionString = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_version)]
ShortText = Annotated[str, StringConstraints(max_length=512)]
LongText = Annotated[str, StringConstraints(max_length=65536)]


def is_valid_version(value: str) -> bool:
    return bool(VERSION_PATTERN.match(value))


def check_checksum(checksum_type: str | None, checksum: str | None) -> None:
    """Raise ``ValueError`` unless the checksum pair is absent or well formed."""
    if checksum_type is None and checksum is None:
        return
    if checksum_type is None or checksum is None:
        raise ValueError("checksum and checksum_type must be given together")
    if checksum_type not in CHECKSUM_LENGTHS:
        raise ValueError(
            f"checksum_type {checksum_type!r} is not supported; use one of "
            + ", ".join(CHECKSUM_TYPES)
        )
    if (
        not re.fullmatch(r"[0-9a-fA-F]+", checksum)
        or len(checksum) != CHECKSUM_LENGTHS[checksum_type]
    ):
        raise ValueError(
            f"checksum is not a {checksum_type} digest: expected "
            f"{CHECKSUM_LENGTHS[checksum_type]} hexadecimal characters"
        )
