"""Who may read and change which account's boxes.

A user owns their own namespace. In an organization, every member may read
private boxes and publish versions and providers; owners and admins may also
create, change and delete boxes. An outsider gets ``NotFound`` for a private
box, so its existence does not leak.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from services.toolkit.errors import NotFound, PermissionDenied, Unauthenticated

from .models import Account, AccountKind, Box, Membership, Role, Version


class Level(enum.IntEnum):
    READ = 1
    PUBLISH = 2
    MANAGE = 3


_ROLE_LEVEL = {Role.OWNER: Level.MANAGE, Role.ADMIN: Level.MANAGE, Role.MEMBER: Level.PUBLISH}

Actor = dict[str, Any] | None


def find_account(session: Session, username: str) -> Account | None:
    return session.scalar(select(Account).where(func.lower(Account.username) == username.lower()))


def require_account(session: Session, username: str) -> Account:
    account = find_account(session, username)
    if account is None:
        raise NotFound(f"user or organization {username!r} not found")
    return account


def level_on(session: Session, actor: Actor, account: Account) -> Level | None:
    """Return the highest level ``actor`` holds on ``account``'s boxes, or None."""
    if actor is None:
        return None
    if account.kind == AccountKind.USER:
        return Level.MANAGE if account.id == actor["id"] else None
    role = session.scalar(
        select(Membership.role).where(
            Membership.organization_id == account.id, Membership.user_id == actor["id"]
        )
    )
    return _ROLE_LEVEL[role] if role is not None else None


def check_level(session: Session, actor: Actor, account: Account, needed: Level) -> None:
    if actor is None:
        raise Unauthenticated("authentication required; send a token in the Authorization header")
    level = level_on(session, actor, account)
    if level is None or level < needed:
        raise PermissionDenied(
            f"user {actor['username']!r} may not change boxes of {account.username!r}"
        )


def require_box(
    session: Session,
    actor: Actor,
    username: str,
    name: str,
    needed: Level = Level.READ,
    with_versions: bool = False,
) -> Box:
    """Return the box ``username/name`` if ``actor`` holds ``needed`` on it.

    ``with_versions`` loads the versions and their providers in the same
    round of queries, for callers that serialize them all.
    """
    query = (
        select(Box)
        .join(Box.account)
        .options(contains_eager(Box.account))
        .where(func.lower(Account.username) == username.lower())
        .where(func.lower(Box.name) == name.lower())
    )
    if with_versions:
        query = query.options(selectinload(Box.versions).selectinload(Version.providers))
    box = session.scalar(query)
    if box is None:
        raise NotFound(f"box {username}/{name} not found")
    account = box.account
    level = level_on(session, actor, account)
    if box.private and level is None:
        raise NotFound(f"box {username}/{name} not found")
    if needed > Level.READ:
        check_level(session, actor, account, needed)
    return box


def require_version(
    session: Session, actor: Actor, username: str, name: str, version: str, needed: Level
) -> Version:
    box = require_box(session, actor, username, name, needed)
    found = session.scalar(
        select(Version).where(Version.box_id == box.id, Version.version == version)
    )
    if found is None:
        raise NotFound(f"version {version} of box {box.account.username}/{box.name} not found")
    return found


def readable_box_filter(session: Session, actor: Actor, account: Account) -> bool:
    """Return whether ``actor`` may see ``account``'s private boxes."""
    return level_on(session, actor, account) is not None
