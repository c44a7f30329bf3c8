"""webhook.deliver: POST one event to a subscriber, signed with the subscription's secret.

The body is JSON: ``{"event", "delivery", "timestamp", "data"}``, where
``data`` is the event's payload. Headers:

- ``X-Atlas-Signature: sha256=<hex>``, the HMAC-SHA256 of the body under the secret;
- ``X-Atlas-Event``, the event's type;
- ``X-Atlas-Delivery``, an id that every attempt of one delivery repeats, so a
  receiver can drop a delivery it has already processed;
- ``X-Atlas-Timestamp``, Unix seconds when the attempt was sent; the body
  carries it too, so the signature covers it and a receiver can reject replays.

A 2xx response delivers; any other response, a timeout or a network error
fails the attempt, and the job machinery retries it with backoff.
Redirects are not followed. The receiver has ``ATLAS.webhook_timeout``
seconds in all, from connecting to the response's status line, and its
response body is never read, so a slow or endless body keeps no worker busy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests

from services.toolkit.jobs import JobRun, PermanentJobError
from services.toolkit.outbound import (
    DisallowedAddress,
    InvalidTarget,
    TimeLimitExceeded,
    time_limit,
    url_origin,
)

USER_AGENT = "Atlas-Webhooks/1"
SIGNATURE_HEADER = "X-Atlas-Signature"


class DeliveryFailed(Exception):
    """The receiver did not accept the delivery; a later attempt may."""


def signature(secret: str, body: bytes) -> str:
    """Return the ``X-Atlas-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_request(job: JobRun, secret: str, now: int) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers of one attempt of the delivery."""
    payload = job.payload
    body = json.dumps(
        {
            "event": payload["event"],
            "delivery": payload["delivery_id"],
            "timestamp": now,
            "data": payload["data"],
        },
        sort_keys=True,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Atlas-Event": payload["event"],
        "X-Atlas-Delivery": payload["delivery_id"],
        "X-Atlas-Timestamp": str(now),
        SIGNATURE_HEADER: signature(secret, body),
    }
    return body, headers


def deliver(
    session: requests.Session, url: str, job: JobRun, secret: str, timeout: float
) -> dict[str, Any]:
    """POST the delivery to ``url`` and return the receiver's status and the time taken."""
    body, headers = signed_request(job, secret, int(time.time()))
    receiver = url_origin(url)
    started = time.monotonic()
    try:
        with time_limit(timeout):
            response = session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            )
            response.close()
    except (DisallowedAddress, InvalidTarget) as exc:
        raise PermanentJobError(f"the receiver {receiver} is not allowed: {exc}") from exc
    except TimeLimitExceeded as exc:
        raise DeliveryFailed(f"POST to {receiver} failed: the receiver {exc}") from exc
    except requests.RequestException as exc:
        # The exception's text may quote the whole URL, so only its type is shown.
        raise DeliveryFailed(f"POST to {receiver} failed: {type(exc).__name__}") from exc

    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"{receiver} responded with HTTP {response.status_code}")
    return {"status": response.status_code, "seconds": round(time.monotonic() - started, 3)}
