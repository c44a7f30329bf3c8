"""Webhook subscriptions, and the delivery jobs that the events they name create.

A subscription belongs to an account and covers all of its boxes, or one
of them. ``submit_deliveries`` observes every event the data service emits
and creates one ``webhook.deliver`` job per matching subscription in the
same transaction, so a delivery exists exactly when its change committed.
The signing secret is shown once, at creation, and stored sealed with
AES-GCM because the workers need it back to sign each delivery.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from schemas.events import WEBHOOK_EVENTS
from schemas.requests import WebhookCreate
from schemas.validation import validate
from services.toolkit.crypto import new_token, seal
from services.toolkit.errors import Conflict, NotFound, Unprocessable
from services.toolkit.outbound import Allowlist, DisallowedAddress, InvalidTarget, check_url

from . import access, jobs
from .access import Actor, Level
from .database import UnitOfWork
from .models import Account, Box, Webhook
from .serialize import timestamp

DELIVERY_KIND = "webhook.deliver"
# Marks the secret as a webhook secret wherever it is pasted.
SECRET_PREFIX = "whsec_"
# Subscriptions of one account, its boxes' included. An event makes a
# delivery job for each matching subscription in the transaction that
# emits it, so this bounds the work one release adds to that transaction.
MAX_WEBHOOKS_PER_ACCOUNT = 100


def webhook_dict(webhook: Webhook, secret: str | None = None) -> dict[str, Any]:
    account = webhook.account
    result: dict[str, Any] = {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "username": account.username,
        "box": f"{account.username}/{webhook.box.name}" if webhook.box is not None else None,
        "created_by": webhook.created_by,
        "created_at": timestamp(webhook.created_at),
    }
    if secret is not None:
        result["secret"] = secret
    return result


def _scope(
    session: Session, actor: Actor, username: str, box_name: str | None
) -> tuple[Account, Box | None]:
    """Return the account, and the box if named, whose webhooks ``actor`` manages."""
    if box_name is not None:
        # Subscriptions change no box, so the box's row is not locked.
        box = access.require_box(session, actor, username, box_name, Level.MANAGE, lock=False)
        return box.account, box
    account = access.require_account(session, username)
    access.check_level(
        session, actor, account, Level.MANAGE, f"manage the webhooks of {account.username!r}"
    )
    return account, None


def check_target(url: str, allowlist: Allowlist) -> None:
    """Raise ``Unprocessable`` unless ``url`` resolves to addresses Atlas may post to."""
    try:
        check_url(url, allowlist)
    except (InvalidTarget, DisallowedAddress) as exc:
        raise Unprocessable(f"url is not allowed: {exc}") from exc
    except requests.ConnectionError as exc:
        raise Unprocessable(f"url is not reachable: {exc}; check the host name") from exc


def create(
    unit: UnitOfWork,
    actor: Actor,
    username: str,
    box_name: str | None,
    fields: dict[str, Any],
    secret_key: bytes,
    allowlist: Allowlist,
) -> dict[str, Any]:
    """Create a subscription and return it with its secret, which is never shown again."""
    request = validate(WebhookCreate, fields)
    account, box = _scope(unit.session, actor, username, box_name)
    check_target(request.url, allowlist)

    events = [event for event in WEBHOOK_EVENTS if event in request.events]
    _check_room(unit.session, account, box, request.url, events)

    secret = SECRET_PREFIX + new_token()
    webhook = Webhook(
        account=account,
        box=box,
        url=request.url,
        events=events,
        secret_sealed=seal(secret_key, secret),
        created_by=access.require_actor(actor)["username"],
    )
    unit.session.add(webhook)
    unit.session.flush()
    return webhook_dict(webhook, secret)


def _check_room(
    session: Session, account: Account, box: Box | None, url: str, events: list[str]
) -> None:
    """Raise unless the account may add this subscription: below the limit, and not a repeat."""
    # The account's row lock makes concurrent creates of one account count one after another.
    session.execute(
        select(Account.id).where(Account.id == account.id).with_for_update(key_share=True)
    )
    existing = session.scalars(select(Webhook).where(Webhook.account_id == account.id)).all()
    if len(existing) >= MAX_WEBHOOKS_PER_ACCOUNT:
        raise Unprocessable(
            f"{account.username!r} has {len(existing)} webhooks, the most an account may have "
            f"with its boxes; delete one before adding another"
        )
    box_id = box.id if box is not None else None
    for webhook in existing:
        if webhook.box_id == box_id and webhook.url == url and webhook.events == events:
            raise Conflict(f"webhook {webhook.id} already sends these events to this URL")


def find(session: Session, actor: Actor, username: str, box_name: str | None) -> dict[str, Any]:
    """Return the subscriptions of a box, or of an account and every box of it."""
    account, box = _scope(session, actor, username, box_name)
    query = select(Webhook).where(Webhook.account_id == account.id).order_by(Webhook.id)
    if box is not None:
        query = query.where(Webhook.box_id == box.id)
    return {"webhooks": [webhook_dict(webhook) for webhook in session.scalars(query)]}


def delete(
    unit: UnitOfWork, actor: Actor, username: str, box_name: str | None, webhook_id: int
) -> dict[str, Any]:
    """Delete a subscription of the account, or of the box if one is named.

    Deliveries that have not run yet fail with the reason that the
    subscription is gone.
    """
    account, box = _scope(unit.session, actor, username, box_name)
    webhook = unit.session.get(Webhook, webhook_id)
    if (
        webhook is None
        or webhook.account_id != account.id
        or (box is not None and webhook.box_id != box.id)
    ):
        raise NotFound(f"webhook {webhook_id} not found")
    result = webhook_dict(webhook)
    unit.session.delete(webhook)
    return result


def delivery_target(session: Session, webhook_id: int) -> dict[str, Any]:
    """Return what a worker needs to deliver: the URL and the sealed secret."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"webhook {webhook_id} not found; it was deleted")
    return {"id": webhook.id, "url": webhook.url, "secret_sealed": webhook.secret_sealed}


def _event_scope(
    session: Session, event_type: str, payload: dict[str, Any]
) -> tuple[int | None, int | None]:
    """Return the account id and the box id (or None) that an event concerns."""
    if event_type == "job.finished":
        return payload.get("account_id"), payload.get("box_id")
    row = session.execute(
        select(Box.account_id, Box.id)
        .join(Account, Account.id == Box.account_id)
        .where(func.lower(Account.username) == str(payload.get("username", "")).lower())
        .where(func.lower(Box.name) == str(payload.get("name", "")).lower())
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)


def submit_deliveries(unit: UnitOfWork, event_type: str, payload: dict[str, Any]) -> None:
    """Create a ``webhook.deliver`` job for each subscription to this event.

    Called by ``UnitOfWork.emit`` for every event, inside its transaction.
    A finished delivery announces nothing, or deliveries would create
    deliveries without end.
    """
    if event_type not in WEBHOOK_EVENTS:
        return
    if event_type == "job.finished" and payload.get("kind") == DELIVERY_KIND:
        return
    session = unit.session
    account_id, box_id = _event_scope(session, event_type, payload)
    if account_id is None:
        return

    box_matches = Webhook.box_id.is_(None)
    if box_id is not None:
        box_matches = or_(box_matches, Webhook.box_id == box_id)
    subscriptions = session.scalars(
        select(Webhook)
        .where(Webhook.account_id == account_id, box_matches)
        .where(Webhook.events.contains([event_type]))
        .order_by(Webhook.id)
    ).all()
    for webhook in subscriptions:
        jobs.submit(
            unit,
            DELIVERY_KIND,
            {
                "webhook_id": webhook.id,
                "delivery_id": str(uuid.uuid4()),
                "event": event_type,
                "data": payload,
            },
            unit.policy,
            account_id=account_id,
            box_id=box_id,
        )
