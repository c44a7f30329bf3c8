"""Users, organizations, memberships and API tokens."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from schemas.fields import NAME_PATTERN, RESERVED_ACCOUNT_NAMES
from services.toolkit.crypto import hash_token, new_token
from services.toolkit.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unprocessable,
)

from . import access
from .models import Account, AccountKind, Box, Membership, Role, Token, Version, utcnow
from .passwords import check_password, hash_password
from .serialize import Urls, account_dict, timestamp

# last_used_at is written at most this often per token, so that reads stay reads.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
MIN_PASSWORD_LENGTH = 8


def _check_username(username: str) -> None:
    if not re.match(NAME_PATTERN, username) or ".." in username or username.endswith("."):
        raise InvalidInput(
            f"name {username!r} is invalid; use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit, at most 64 characters"
        )
    if username.lower() in RESERVED_ACCOUNT_NAMES:
        raise Unprocessable(f"name {username!r} is reserved for Atlas's own routes; choose another")


def _add_account(session: Session, account: Account) -> Account:
    session.add(account)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"the name {account.username!r} is already taken") from exc
    return account


def create_user(
    session: Session, username: str, password: str | None, email: str | None
) -> dict[str, Any]:
    _check_username(username)
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters long")
    user = Account(
        kind=AccountKind.USER,
        username=username,
        email=email,
        password_hash=hash_password(password) if password else None,
    )
    _add_account(session, user)
    return {
        "username": user.username,
        "kind": user.kind.value,
        "created_at": timestamp(user.created_at),
    }


def create_organization(session: Session, name: str, owner: str) -> dict[str, Any]:
    _check_username(name)
    owner_account = access.require_account(session, owner)
    if owner_account.kind != AccountKind.USER:
        raise InvalidInput(f"{owner!r} is an organization; an owner must be a user")
    organization = _add_account(session, Account(kind=AccountKind.ORGANIZATION, username=name))
    session.add(Membership(organization=organization, user=owner_account, role=Role.OWNER))
    return {
        "username": organization.username,
        "kind": organization.kind.value,
        "created_at": timestamp(organization.created_at),
    }


def add_member(session: Session, organization: str, username: str, role: str) -> dict[str, Any]:
    org = access.require_account(session, organization)
    if org.kind != AccountKind.ORGANIZATION:
        raise InvalidInput(f"{organization!r} is a user, not an organization")
    user = access.require_account(session, username)
    if user.kind != AccountKind.USER:
        raise InvalidInput(f"{username!r} is an organization; members must be users")
    try:
        parsed_role = Role(role)
    except ValueError as exc:
        raise InvalidInput(f"role {role!r} is invalid; use owner, admin or member") from exc
    membership = session.get(Membership, (org.id, user.id))
    if membership is None:
        session.add(Membership(organization=org, user=user, role=parsed_role))
    elif parsed_role != membership.role:
        check_keeps_an_owner(session, org, membership)
        membership.role = parsed_role
    return {"organization": org.username, "username": user.username, "role": parsed_role.value}


def check_keeps_an_owner(session: Session, organization: Account, leaving: Membership) -> None:
    """Raise Unprocessable if ``leaving`` is the organization's last owner."""
    if leaving.role != Role.OWNER:
        return
    owners = session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.organization_id == organization.id, Membership.role == Role.OWNER)
    )
    if owners is not None and owners <= 1:
        raise Unprocessable(
            f"{leaving.user.username!r} is the last owner of {organization.username!r}; "
            "make another member owner first"
        )


def get_account(session: Session, urls: Urls, actor: access.Actor, username: str) -> dict[str, Any]:
    account = access.require_account(session, username)
    query = (
        select(Box)
        .where(Box.account_id == account.id)
        .options(selectinload(Box.versions).selectinload(Version.providers))
        .order_by(Box.name)
    )
    if not access.sees_unreleased(session, actor, account):
        query = query.where(Box.private.is_(False))
    return account_dict(urls, account, list(session.scalars(query)))


def _token_dict(token: Token, secret: str | None = None) -> dict[str, Any]:
    result = {
        "id": token.id,
        "description": token.description or "",
        "token_hash": token.token_hash,
        "created_at": timestamp(token.created_at),
        "last_used_at": timestamp(token.last_used_at),
        "user": {"username": token.account.username},
    }
    if secret is not None:
        result["token"] = secret
    return result


def issue_token(session: Session, username: str, description: str | None) -> dict[str, Any]:
    account = access.require_account(session, username)
    if account.kind != AccountKind.USER:
        raise InvalidInput(f"{username!r} is an organization; tokens belong to users")
    secret = new_token()
    token = Token(account=account, token_hash=hash_token(secret), description=description)
    session.add(token)
    session.flush()
    return _token_dict(token, secret)


def check_credentials(session: Session, login_name: str, password: str) -> Account:
    """Return the user whose username and password these are; raise Unauthenticated if none."""
    account = access.find_account(session, login_name)
    if account is None or account.kind != AccountKind.USER:
        check_password(None, password)
        raise Unauthenticated("invalid username or password")
    if not check_password(account.password_hash, password):
        raise Unauthenticated("invalid username or password")
    return account


def login(
    session: Session, login_name: str, password: str, description: str | None
) -> dict[str, Any]:
    account = check_credentials(session, login_name, password)
    return issue_token(session, account.username, description)


def _find_token(session: Session, secret: str) -> Token:
    token = session.scalar(select(Token).where(Token.token_hash == hash_token(secret)))
    if token is None:
        raise Unauthenticated("the token is invalid or was revoked")
    return token


def authenticate(session: Session, secret: str) -> dict[str, Any]:
    """Return the actor and token details for a bearer token, recording its use."""
    token = _find_token(session, secret)
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
    return {
        "actor": {"id": token.account.id, "username": token.account.username},
        "token": _token_dict(token),
    }


def revoke_token(session: Session, secret: str) -> None:
    session.delete(_find_token(session, secret))


def list_tokens(session: Session, actor: access.Actor) -> dict[str, Any]:
    """Return the actor's tokens, newest first, without their secrets."""
    user = access.require_actor(actor)
    tokens = session.scalars(
        select(Token)
        .where(Token.account_id == user["id"])
        .order_by(Token.created_at.desc(), Token.id.desc())
    )
    return {"tokens": [_token_dict(token) for token in tokens]}


def revoke_token_by_id(session: Session, actor: access.Actor, token_id: int) -> dict[str, Any]:
    """Revoke one of the actor's tokens; another user's token is reported as not found."""
    user = access.require_actor(actor)
    token = session.get(Token, token_id)
    if token is None or token.account_id != user["id"]:
        raise NotFound(f"token {token_id} not found")
    result = _token_dict(token)
    session.delete(token)
    return result


def find_user(session: Session, username: str) -> Account:
    account = access.find_account(session, username)
    if account is None or account.kind != AccountKind.USER:
        raise NotFound(f"user {username!r} not found")
    return account
