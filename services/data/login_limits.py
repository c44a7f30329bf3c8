"""Limits on failed password sign-ins, per login name and per client address.

Each attempt is written to ``login_failures`` before its password is
checked, and deleted again only if the password was right. Two counts
decide whether an attempt may proceed: failures to the same login name and
failures from the same client address within the window. Counting and
writing happen in one transaction under advisory locks on both keys, so
concurrent attempts through any number of gateway and data processes
cannot pass a limit together.

The counters are keyed by the login name as typed, whether an account has
that name or not, so a limit behaves the same for every name and reveals
nothing about which accounts exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from services.toolkit import config as cfg
from services.toolkit.errors import TooManyRequests

from .models import LoginFailure, utcnow

# Prefix of every IPv6 client's counter: one host usually controls a whole /64.
IPV6_PREFIX_LENGTH = 64

# Prefixes of the advisory lock keys. Each key is a 64-bit hash of prefix and
# value, so a collision with another advisory lock is unlikely but possible,
# and would only make two attempts wait for each other.
ACCOUNT_LOCK = "atlas.login_failures.account:"
ADDRESS_LOCK = "atlas.login_failures.address:"


@dataclass(frozen=True)
class LoginLimits:
    window: float  # seconds
    max_per_account: int
    max_per_address: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LoginLimits:
        return cls(
            window=float(cfg.setting(config, cfg.LOGIN_FAILURE_WINDOW)),
            max_per_account=int(cfg.setting(config, cfg.LOGIN_MAX_FAILURES_PER_ACCOUNT)),
            max_per_address=int(cfg.setting(config, cfg.LOGIN_MAX_FAILURES_PER_ADDRESS)),
        )


def login_key(login_name: str) -> str:
    """Return the counter key of a login name: the sha256 of its lowercase form."""
    return hashlib.sha256(login_name.lower().encode("utf-8", "surrogatepass")).hexdigest()


def address_key(address: str | None) -> str | None:
    """Return the counter key of a client address, or None when it is missing or invalid.

    An IPv4-mapped IPv6 address counts as its IPv4 address, and other IPv6
    addresses count as their /64 network.
    """
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX_LENGTH), strict=False))
    return str(parsed)


def _lock(session: Session, key: str) -> None:
    session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


def _retry_after(
    session: Session, matches: ColumnElement[bool], limit: int, since: dt.datetime, window: float
) -> float:
    """Return the seconds until fewer than ``limit`` failures match, or 0 when they do already."""
    failures = session.scalars(
        select(LoginFailure.failed_at)
        .where(matches, LoginFailure.failed_at > since)
        .order_by(LoginFailure.failed_at.desc())
        .limit(limit)
    ).all()
    if len(failures) < limit:
        return 0.0
    # The oldest of the newest ``limit`` failures frees a slot when it leaves the window.
    frees_at = failures[-1] + dt.timedelta(seconds=window)
    return max(1.0, (frees_at - utcnow()).total_seconds())


def reserve_attempt(
    session: Session, limits: LoginLimits, login_name: str, client_address: str | None
) -> None:
    """Record a sign-in attempt as failed, unless a limit is reached; then raise TooManyRequests.

    The caller commits this before it checks the password, and calls
    ``forgive`` when the password was right.
    """
    name = login_key(login_name)
    address = address_key(client_address)
    # The name's lock is taken before the address's, so two attempts cannot deadlock.
    _lock(session, ACCOUNT_LOCK + name)
    if address is not None:
        _lock(session, ADDRESS_LOCK + address)

    since = utcnow() - dt.timedelta(seconds=limits.window)
    wait = _retry_after(
        session, LoginFailure.login_hash == name, limits.max_per_account, since, limits.window
    )
    if address is not None:
        by_address = _retry_after(
            session,
            LoginFailure.client_address == address,
            limits.max_per_address,
            since,
            limits.window,
        )
        wait = max(wait, by_address)
    if wait:
        seconds = math.ceil(wait)
        raise TooManyRequests(
            f"too many failed sign-in attempts; try again in {seconds} seconds", seconds
        )

    session.add(LoginFailure(login_hash=name, client_address=address, failed_at=utcnow()))
    session.flush()


def forgive(session: Session, login_name: str, client_address: str | None) -> None:
    """Delete the failures of ``login_name`` from ``client_address`` after a right password.

    Failures of other login names from the same address stay, so signing in
    to one's own account does not reset the address's count for guesses at
    other accounts.
    """
    address = address_key(client_address)
    matches_address = (
        LoginFailure.client_address.is_(None)
        if address is None
        else LoginFailure.client_address == address
    )
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.login_hash == login_key(login_name), matches_address
        )
    )


def prune(session: Session, limits: LoginLimits) -> int:
    """Delete failures older than the window; return how many were deleted."""
    since = utcnow() - dt.timedelta(seconds=limits.window)
    result = session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= since))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
