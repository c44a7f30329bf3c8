"""Pages for watching jobs: a filtered list and one job with its history."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from services.toolkit.errors import AtlasError, NotFound

from ..web.base import PageBase, page
from ..web.security import Visitor

JOB_STATES = ("pending", "queued", "running", "retrying", "succeeded", "failed", "cancelled")
JOB_KINDS = ("box.inspect", "box.import", "webhook.deliver")
# The job state machine in the data service allows cancel from these states
# and retry from failed; the buttons follow it, and the data service decides.
CANCELLABLE = frozenset({"pending", "queued", "running", "retrying"})
RETRYABLE = frozenset({"failed"})
FILTERS = ("state", "kind", "box")
PAGE_SIZE = 25
REFRESH_SECONDS = 3  # how often an unfinished job's page reloads itself


def _job_id(value: str) -> int:
    # The URL rule matches any segment; anything but a positive number names no job.
    if not value.isdigit() or len(value) > 18:
        raise NotFound(f"job {value!r} not found")
    return int(value)


class JobPageRoutes(PageBase):
    @page("GET", "/-/jobs")
    def jobs_page(self, request: Request, visitor: Visitor) -> Response:
        filters = {name: request.args.get(name, "").strip() for name in FILTERS}
        query: dict[str, Any] = {name: value for name, value in filters.items() if value}
        before = request.args.get("before", "")
        if before.isdigit():
            query["before"] = int(before)
        query["limit"] = PAGE_SIZE

        status, error = 200, None
        try:
            listing = self.data.list_jobs(visitor.actor, query)
        except AtlasError as exc:
            listing = {"jobs": [], "next_before": None}
            status, error = exc.status, str(exc)
        older = None
        if listing.get("next_before"):
            kept = {name: value for name, value in filters.items() if value}
            older = urlencode({**kept, "before": listing["next_before"]})
        return self.render(
            request,
            visitor,
            "jobs.html",
            status=status,
            error=error,
            jobs=listing["jobs"],
            filters=filters,
            states=JOB_STATES,
            kinds=JOB_KINDS,
            older=older,
        )

    @page("GET", "/-/jobs/<job_id>")
    def job_page(self, request: Request, visitor: Visitor, job_id: str) -> Response:
        return self.render_job(request, visitor, _job_id(job_id))

    def render_job(
        self,
        request: Request,
        visitor: Visitor,
        job_id: int,
        status: int = 200,
        error: str | None = None,
    ) -> Response:
        job = self.data.get_job(visitor.actor, job_id)
        return self.render(
            request,
            visitor,
            "job.html",
            status=status,
            error=error,
            job=job,
            finished=job["state"] not in CANCELLABLE,
            can_cancel=job["state"] in CANCELLABLE,
            can_retry=job["state"] in RETRYABLE,
            refresh_seconds=REFRESH_SECONDS,
        )

    @page("POST", "/-/jobs/<job_id>/cancel")
    def submit_job_cancel(self, request: Request, visitor: Visitor, job_id: str) -> Response:
        return self._change_job("cancel_job", request, visitor, _job_id(job_id))

    @page("POST", "/-/jobs/<job_id>/retry")
    def submit_job_retry(self, request: Request, visitor: Visitor, job_id: str) -> Response:
        return self._change_job("retry_job", request, visitor, _job_id(job_id))

    def _change_job(self, method: str, request: Request, visitor: Visitor, job_id: int) -> Response:
        actor = self.require_visitor(request, visitor)
        self.form(request, visitor)
        try:
            getattr(self.data, method)(actor, job_id)
        except AtlasError as exc:
            return self.render_job(request, visitor, job_id, exc.status, str(exc))
        return self.redirect(visitor, f"/-/jobs/{job_id}")
