"""Jobs of one's own boxes: list, show with history, cancel and retry. An Atlas extension."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from services.toolkit.errors import InvalidInput
from services.toolkit.numbers import MAX_DIGITS, whole_number
from services.toolkit.web import api

from ..auth import TOKEN_PARAMETER
from .base import V1, V2, GatewayBase

# Job ids are PostgreSQL bigints; a larger number matches no route.
JOB = "/jobs/<int(max=9223372036854775807):job_id>"
LIST_FILTERS = ("state", "kind", "box", "before", "limit")
NUMERIC_FILTERS = ("before", "limit")


def list_filters(request: Request) -> dict[str, Any]:
    """Return the job list's query parameters, numbers converted; raise on unknown ones."""
    filters: dict[str, Any] = {}
    for key, value in request.args.items():
        if key == TOKEN_PARAMETER:
            continue
        if key not in LIST_FILTERS:
            raise InvalidInput(f"unknown query parameter {key!r}; use {', '.join(LIST_FILTERS)}")
        if key in NUMERIC_FILTERS:
            number = whole_number(value)
            if number is None:
                raise InvalidInput(
                    f"{key} must be a whole number of at most {MAX_DIGITS} digits, not {value!r}"
                )
            filters[key] = number
        else:
            filters[key] = value
    return filters


class JobRoutes(GatewayBase):
    @api("GET", V1 + "/jobs")
    @api("GET", V2 + "/jobs")
    def list_jobs(self, request: Request) -> Any:
        return self.data.list_jobs(self.require_actor(request), **list_filters(request))

    @api("GET", V1 + JOB)
    @api("GET", V2 + JOB)
    def get_job(self, request: Request, job_id: int) -> Any:
        return self.data.get_job(self.require_actor(request), job_id)

    @api("POST", V1 + JOB + "/cancel")
    @api("POST", V2 + JOB + "/cancel")
    def cancel_job(self, request: Request, job_id: int) -> Any:
        return self.data.cancel_job(self.require_actor(request), job_id)

    @api("POST", V1 + JOB + "/retry")
    @api("POST", V2 + JOB + "/retry")
    def retry_job(self, request: Request, job_id: int) -> Any:
        return self.data.retry_job(self.require_actor(request), job_id)
