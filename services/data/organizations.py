"""Organizations and their members, managed by the members themselves.

The rules of who may change which membership are in ``access``: owners and
admins manage members, only owners touch the owner role, and an
organization always keeps one owner.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schemas.organizations import MemberUpdate, OrganizationCreate
from schemas.validation import validate as parse
from services.toolkit.errors import NotFound, PermissionDenied

from . import access, accounts
from .models import Account, AccountKind, Membership, Role
from .serialize import timestamp


def _membership_dict(membership: Membership) -> dict[str, Any]:
    return {
        "organization": membership.organization.username,
        "username": membership.user.username,
        "role": membership.role.value,
        "created_at": timestamp(membership.created_at),
    }


def _require_organization(session: Session, name: str, lock: bool = False) -> Account:
    query = select(Account).where(
        func.lower(Account.username) == name.lower(), Account.kind == AccountKind.ORGANIZATION
    )
    if lock:
        # Serializes membership changes per organization, so that two owners
        # demoting each other at once cannot leave it without an owner.
        query = query.with_for_update()
    organization = session.scalar(query)
    if organization is None:
        raise NotFound(f"organization {name!r} not found")
    return organization


def _require_member(
    session: Session, actor: access.Actor, organization: Account, action: str
) -> tuple[dict[str, Any], Role]:
    """Return the actor and their role; raise unless the actor is a member."""
    user = access.require_actor(actor)
    role = access.role_in(session, user, organization)
    if role is None:
        raise PermissionDenied(
            f"user {user['username']!r} is not a member of {organization.username!r} "
            f"and may not {action}"
        )
    return user, role


def _check_manager(role: Role, actor: dict[str, Any], organization: Account, action: str) -> None:
    if role not in (Role.OWNER, Role.ADMIN):
        raise PermissionDenied(
            f"user {actor['username']!r} may not {action}; ask an owner or admin of "
            f"{organization.username!r}"
        )


def _check_owner(role: Role, actor: dict[str, Any], organization: Account, action: str) -> None:
    if role != Role.OWNER:
        raise PermissionDenied(
            f"user {actor['username']!r} may not {action}; ask an owner of "
            f"{organization.username!r}"
        )


def create_organization(
    session: Session, actor: access.Actor, fields: dict[str, Any]
) -> dict[str, Any]:
    """Create an organization whose first owner is the actor."""
    user = access.require_actor(actor)
    request = parse(OrganizationCreate, fields)
    accounts.create_organization(session, request.name, user["username"])
    return get_organization(session, actor, request.name)


def get_organization(session: Session, actor: access.Actor, name: str) -> dict[str, Any]:
    """Return an organization with its members; only members may read them."""
    organization = _require_organization(session, name)
    _require_member(session, actor, organization, "list its members")
    members = session.scalars(
        select(Membership)
        .join(Account, Membership.user_id == Account.id)
        .where(Membership.organization_id == organization.id)
        .order_by(func.lower(Account.username))
    )
    return {
        "username": organization.username,
        "created_at": timestamp(organization.created_at),
        "members": [_membership_dict(membership) for membership in members],
    }


def list_organizations(session: Session, actor: access.Actor) -> dict[str, Any]:
    """Return the organizations the actor belongs to, with the actor's role in each."""
    user = access.require_actor(actor)
    memberships = session.scalars(
        select(Membership)
        .join(Account, Membership.organization_id == Account.id)
        .where(Membership.user_id == user["id"])
        .order_by(func.lower(Account.username))
    )
    return {"organizations": [_membership_dict(membership) for membership in memberships]}


def set_member(
    session: Session, actor: access.Actor, name: str, username: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Add ``username`` to the organization or change their role."""
    request = parse(MemberUpdate, fields)
    organization = _require_organization(session, name, lock=True)
    manager, actor_role = _require_member(session, actor, organization, "manage its members")
    _check_manager(actor_role, manager, organization, "manage members")

    user = accounts.find_user(session, username)
    new_role = Role(request.role)
    membership = session.get(Membership, (organization.id, user.id))
    if Role.OWNER in (new_role, membership.role if membership else None):
        _check_owner(actor_role, manager, organization, "grant or change the owner role")

    if membership is None:
        membership = Membership(organization=organization, user=user, role=new_role)
        session.add(membership)
    elif new_role != membership.role:
        accounts.check_keeps_an_owner(session, organization, membership)
        membership.role = new_role
    session.flush()
    return _membership_dict(membership)


def remove_member(
    session: Session, actor: access.Actor, name: str, username: str
) -> dict[str, Any]:
    """Remove ``username`` from the organization; members may remove themselves."""
    organization = _require_organization(session, name, lock=True)
    manager, actor_role = _require_member(session, actor, organization, "manage its members")

    user = accounts.find_user(session, username)
    membership = session.get(Membership, (organization.id, user.id))
    if membership is None:
        raise NotFound(f"user {user.username!r} is not a member of {organization.username!r}")
    if user.id != manager["id"]:
        _check_manager(actor_role, manager, organization, "remove members")
        if membership.role == Role.OWNER:
            _check_owner(actor_role, manager, organization, "remove an owner")
    accounts.check_keeps_an_owner(session, organization, membership)

    result = _membership_dict(membership)
    session.delete(membership)
    return result
