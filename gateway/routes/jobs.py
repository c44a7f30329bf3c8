"""Jobs, box imports and webhook subscriptions (Atlas extensions of the API)."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from services.toolkit.errors import InvalidInput, NotFound
from services.toolkit.web import api, read_json

from .base import PROVIDER, PROVIDER_ARCH, V1, V2, GatewayBase

JOB_FILTERS = ("state", "kind", "box", "limit", "before")
# Largest ids the database columns hold: bigint for jobs, integer for webhooks.
MAX_JOB_ID = 2**63 - 1
MAX_WEBHOOK_ID = 2**31 - 1


def _number(label: str, value: str, maximum: int) -> int:
    if not value.isdigit():
        raise InvalidInput(f"{label} {value!r} is invalid; it must be a positive whole number")
    number = int(value)
    if number > maximum:
        raise NotFound(f"{label} {value} not found")
    return number


def _job_id(value: str) -> int:
    return _number("job id", value, MAX_JOB_ID)


def _webhook_id(value: str) -> int:
    return _number("webhook id", value, MAX_WEBHOOK_ID)


def _filters(request: Request, names: tuple[str, ...]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name in names:
        value = request.args.get(name, "").strip()
        if not value:
            continue
        if name in ("limit", "before"):
            if not value.isdigit():
                raise InvalidInput(f"{name} must be a positive whole number, not {value!r}")
            filters[name] = min(int(value), MAX_JOB_ID)
        else:
            filters[name] = value
    return filters


class JobRoutes(GatewayBase):
    @api("GET", V1 + "/jobs")
    @api("GET", V2 + "/jobs")
    def list_jobs(self, request: Request) -> Any:
        return self.data.list_jobs(self.actor(request), _filters(request, JOB_FILTERS))

    @api("GET", V1 + "/jobs/<job_id>")
    @api("GET", V2 + "/jobs/<job_id>")
    def get_job(self, request: Request, job_id: str) -> Any:
        return self.data.get_job(self.actor(request), _job_id(job_id))

    @api("POST", V1 + "/jobs/<job_id>/cancel")
    @api("POST", V2 + "/jobs/<job_id>/cancel")
    def cancel_job(self, request: Request, job_id: str) -> Any:
        return self.data.cancel_job(self.require_actor(request), _job_id(job_id))

    @api("POST", V1 + "/jobs/<job_id>/retry")
    @api("POST", V2 + "/jobs/<job_id>/retry")
    def retry_job(self, request: Request, job_id: str) -> Any:
        return self.data.retry_job(self.require_actor(request), _job_id(job_id))

    @api("POST", V1 + PROVIDER + "/import")
    @api("POST", V2 + PROVIDER_ARCH + "/import")
    def import_provider(
        self,
        request: Request,
        username: str,
        name: str,
        version: str,
        provider: str,
        architecture: str | None = None,
    ) -> Any:
        job = self.data.import_provider(
            self.require_actor(request),
            username,
            name,
            version,
            provider,
            architecture,
            read_json(request),
        )
        return 202, job

    @api("GET", V1 + "/webhooks")
    @api("GET", V2 + "/webhooks")
    def list_webhooks(self, request: Request) -> Any:
        filters = _filters(request, ("username", "box"))
        if len(filters) != 1:
            raise InvalidInput("give either username or box (user/name) to list webhooks")
        return self.data.list_webhooks(self.require_actor(request), **filters)

    @api("POST", V1 + "/webhooks")
    @api("POST", V2 + "/webhooks")
    def create_webhook(self, request: Request) -> Any:
        return 201, self.data.create_webhook(self.require_actor(request), read_json(request))

    @api("GET", V1 + "/webhooks/<webhook_id>")
    @api("GET", V2 + "/webhooks/<webhook_id>")
    def get_webhook(self, request: Request, webhook_id: str) -> Any:
        return self.data.get_webhook(self.require_actor(request), _webhook_id(webhook_id))

    @api("PUT", V1 + "/webhooks/<webhook_id>")
    @api("PUT", V2 + "/webhooks/<webhook_id>")
    def update_webhook(self, request: Request, webhook_id: str) -> Any:
        return self.data.update_webhook(
            self.require_actor(request), _webhook_id(webhook_id), read_json(request)
        )

    @api("DELETE", V1 + "/webhooks/<webhook_id>")
    @api("DELETE", V2 + "/webhooks/<webhook_id>")
    def delete_webhook(self, request: Request, webhook_id: str) -> Any:
        return self.data.delete_webhook(self.require_actor(request), _webhook_id(webhook_id))

    @api("POST", V1 + "/webhooks/<webhook_id>/secret")
    @api("POST", V2 + "/webhooks/<webhook_id>/secret")
    def rotate_webhook_secret(self, request: Request, webhook_id: str) -> Any:
        return self.data.rotate_webhook_secret(self.require_actor(request), _webhook_id(webhook_id))

    @api("GET", V1 + "/webhooks/<webhook_id>/deliveries")
    @api("GET", V2 + "/webhooks/<webhook_id>/deliveries")
    def webhook_deliveries(self, request: Request, webhook_id: str) -> Any:
        return self.data.webhook_deliveries(
            self.require_actor(request),
            _webhook_id(webhook_id),
            _filters(request, ("state", "limit", "before")),
        )
