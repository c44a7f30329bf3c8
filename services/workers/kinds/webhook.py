"""webhook.deliver: POST one event to a subscriber, signed with the subscription's secret.

The receiver checks ``X-Atlas-Signature: t=<unix time>,v1=<hex>``, where
``v1`` is HMAC-SHA256 under the secret of ``"<t>." + body``, and should
reject old timestamps to stop replays. Retries of one delivery carry the
same ``X-Atlas-Delivery`` id, so a receiver can drop a delivery it has
already processed. Network errors, timeouts, 408, 429 and 5xx responses
are retried with backoff, and any other status outside 2xx fails the
delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests

from services.toolkit import config as cfg
from services.toolkit.crypto import decrypt
from services.toolkit.errors import NotFound
from services.toolkit.outbound import DisallowedAddress, guarded_session

from ..registry import Job, PermanentFailure, job_kind

USER_AGENT = "Atlas-Webhooks/1"
RETRIED_STATUSES = frozenset({408, 429})


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@job_kind("webhook.deliver")
def deliver_webhook(job: Job) -> dict[str, Any]:
    payload = job.payload
    try:
        target = job.data.webhook_delivery_target(payload["webhook_id"])
    except NotFound as exc:
        raise PermanentFailure(str(exc)) from exc
    if not target["active"]:
        raise PermanentFailure(f"webhook {target['id']} is inactive")
    secret = decrypt(cfg.secret_key(job.config), target["secret_encrypted"])

    body = json.dumps(
        {"delivery": job.id, "event": payload["event"], "data": payload["data"]},
        sort_keys=True,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Atlas-Event": payload["event"],
        "X-Atlas-Delivery": str(job.id),
        "X-Atlas-Signature": signature_header(secret, body, int(time.time())),
    }
    timeout = float(cfg.job_setting(job.config, cfg.JOB_HTTP_TIMEOUT, job.kind))
    started = time.monotonic()
    try:
        with guarded_session(job.config) as session:
            response = session.post(
                target["url"], data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
    except DisallowedAddress as exc:
        raise PermanentFailure(f"webhook URL {target['url']} is not allowed: {exc}") from exc
    except requests.RequestException as exc:
        raise RuntimeError(f"POST to {target['url']} failed: {exc}") from exc

    status = response.status_code
    if 200 <= status < 300:
        return {"status": status, "seconds": round(time.monotonic() - started, 3)}
    if status >= 500 or status in RETRIED_STATUSES:
        raise RuntimeError(f"receiver responded with HTTP {status}")
    raise PermanentFailure(f"receiver responded with HTTP {status}; such responses are not retried")
