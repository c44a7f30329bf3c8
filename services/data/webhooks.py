"""Webhook subscriptions and the delivery jobs their events create.

A subscription belongs to an account and covers all of its boxes, or one
of them. When an event it subscribes to is emitted, ``submit_deliveries``
creates one ``webhook.deliver`` job per subscription in the same
transaction, so a delivery exists exactly when the change committed.
The signing secret is shown once and stored encrypted, because the worker
needs it back to sign each delivery.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import any_, func, literal, or_, select
from sqlalchemy.orm import Session

from schemas import requests as bodies
from schemas.requests import WEBHOOK_EVENTS
from schemas.validation import validate as parse
from services.toolkit import config as cfg
from services.toolkit.crypto import encrypt, new_token
from services.toolkit.errors import NotFound

from . import access, jobs
from .access import Level
from .database import UnitOfWork
from .models import Account, Box, Webhook
from .serialize import timestamp

DELIVERY_KIND = "webhook.deliver"
SECRET_PREFIX = "whsec_"


def _new_secret(config: dict[str, Any]) -> tuple[str, str]:
    secret = SECRET_PREFIX + new_token()
    return secret, encrypt(cfg.secret_key(config), secret)


def webhook_dict(webhook: Webhook, secret: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "description": webhook.description or "",
        "active": webhook.active,
        "username": webhook.account.username,
        "box": f"{webhook.account.username}/{webhook.box.name}" if webhook.box else None,
        "created_at": timestamp(webhook.created_at),
        "updated_at": timestamp(webhook.updated_at),
    }
    if secret is not None:
        result["secret"] = secret
    return result


def _scope(
    session: Session, actor: access.Actor, username: str | None, box: str | None
) -> tuple[Account, Box | None]:
    if box is not None:
        owner, _, name = box.partition("/")
        found = access.require_box(session, actor, owner, name, Level.MANAGE)
        return found.account, found
    assert username is not None
    account = access.require_account(session, username)
    access.check_level(session, actor, account, Level.MANAGE)
    return account, None


def create_webhook(unit: UnitOfWork, actor: access.Actor, fields: dict[str, Any]) -> dict:
    request = parse(bodies.WebhookCreate, fields)
    account, box = _scope(unit.session, actor, request.username, request.box)
    secret, sealed = _new_secret(unit.config)
    webhook = Webhook(
        account=account,
        box=box,
        url=request.url,
        events=sorted(set(request.events)),
        description=request.description,
        active=True if request.active is None else request.active,
        secret_encrypted=sealed,
    )
    unit.session.add(webhook)
    unit.session.flush()
    return webhook_dict(webhook, secret)


def require_webhook(
    session: Session, actor: access.Actor, webhook_id: int, needed: Level = Level.MANAGE
) -> Webhook:
    """Return the webhook if ``actor`` manages its account; outsiders get ``NotFound``."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or access.level_on(session, actor, webhook.account) is None:
        raise NotFound(f"webhook {webhook_id} not found")
    access.check_level(session, actor, webhook.account, needed)
    return webhook


def list_webhooks(
    session: Session, actor: access.Actor, username: str | None, box: str | None
) -> dict[str, Any]:
    account, found_box = _scope(session, actor, username, box)
    query = select(Webhook).where(Webhook.account_id == account.id).order_by(Webhook.id)
    if found_box is not None:
        query = query.where(Webhook.box_id == found_box.id)
    return {"webhooks": [webhook_dict(w) for w in session.scalars(query)]}


def get_webhook(session: Session, actor: access.Actor, webhook_id: int) -> dict[str, Any]:
    return webhook_dict(require_webhook(session, actor, webhook_id))


def update_webhook(
    unit: UnitOfWork, actor: access.Actor, webhook_id: int, fields: dict[str, Any]
) -> dict[str, Any]:
    request = parse(bodies.WebhookFields, fields)
    webhook = require_webhook(unit.session, actor, webhook_id)
    if request.url is not None:
        webhook.url = request.url
    if request.events is not None:
        webhook.events = sorted(set(request.events))
    if request.description is not None:
        webhook.description = request.description
    if request.active is not None:
        webhook.active = request.active
    return webhook_dict(webhook)


def rotate_secret(unit: UnitOfWork, actor: access.Actor, webhook_id: int) -> dict[str, Any]:
    webhook = require_webhook(unit.session, actor, webhook_id)
    secret, webhook.secret_encrypted = _new_secret(unit.config)
    return webhook_dict(webhook, secret)


def delete_webhook(unit: UnitOfWork, actor: access.Actor, webhook_id: int) -> dict[str, Any]:
    webhook = require_webhook(unit.session, actor, webhook_id)
    result = webhook_dict(webhook)
    unit.session.delete(webhook)
    return result


def delivery_target(session: Session, webhook_id: int) -> dict[str, Any]:
    """Return what a worker needs to deliver: URL, sealed secret and whether it is active."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"webhook {webhook_id} not found; it was deleted")
    return {
        "id": webhook.id,
        "url": webhook.url,
        "active": webhook.active,
        "secret_encrypted": webhook.secret_encrypted,
    }


def _event_scope(session: Session, event_type: str, payload: dict[str, Any]) -> tuple[int, Any]:
    """Return the (account id, box id or None) an event concerns, or (0, None) if unknown."""
    if event_type == "job.finished":
        if payload.get("kind") == DELIVERY_KIND:
            # A finished delivery announces nothing, or deliveries would feed themselves.
            return 0, None
        if payload.get("box"):
            box = _find_box(session, *str(payload["box"]).split("/", 1))
            return (box.account_id, box.id) if box is not None else (0, None)
        account = (
            access.find_account(session, payload["account"]) if payload.get("account") else None
        )
        return (account.id, None) if account is not None else (0, None)
    box = _find_box(session, payload.get("username", ""), payload.get("name", ""))
    return (box.account_id, box.id) if box is not None else (0, None)


def _find_box(session: Session, username: str, name: str) -> Box | None:
    account = access.find_account(session, username)
    if account is None:
        return None
    return session.scalar(
        select(Box).where(Box.account_id == account.id, func.lower(Box.name) == name.lower())
    )


def submit_deliveries(unit: UnitOfWork, event_type: str, payload: dict[str, Any]) -> None:
    """Create a delivery job for each active subscription to this event (an event observer)."""
    if event_type not in WEBHOOK_EVENTS:
        return
    session = unit.session
    account_id, box_id = _event_scope(session, event_type, payload)
    if not account_id:
        return
    subscriptions = session.scalars(
        select(Webhook).where(
            Webhook.account_id == account_id,
            Webhook.active.is_(True),
            literal(event_type) == any_(Webhook.events),
            or_(Webhook.box_id.is_(None), Webhook.box_id == box_id),
        )
    )
    for webhook in subscriptions:
        jobs.submit(
            unit,
            DELIVERY_KIND,
            {"webhook_id": webhook.id, "event": event_type, "data": payload},
            account=webhook.account,
        )
