"""Pages of the signed-in person's jobs: a filtered list, and one job with its history.

Cancel and retry are plain forms posted with a CSRF token. The data
service decides whether the job's state allows them, and the job page
shows the ``Conflict`` it raises when the state does not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from services.toolkit.errors import AtlasError, NotFound
from services.toolkit.numbers import whole_number

from ..web.base import PageBase, page
from ..web.security import Visitor

JOBS_PAGE = "/-/jobs"
# Any segment matches, so that a malformed id gets an HTML page rather than the API's JSON 404.
JOB_PAGE = JOBS_PAGE + "/<job_id>"
MAX_JOB_ID = 2**63 - 1  # job ids are PostgreSQL bigints
JOBS_PAGE_SIZE = 25
# The states offered by the list's filter; the data service checks the value itself.
JOB_STATES = ("pending", "queued", "running", "retrying", "succeeded", "failed", "cancelled")
# The text the job page shows before the data service's reason when it rejects an action.
REJECTION_PREFIXES = {
    "cancel_job": "The job was not cancelled",
    "retry_job": "The job was not retried",
}


def job_page_path(job_id: int) -> str:
    return f"{JOBS_PAGE}/{job_id}"


def _list_query(request: Request) -> dict[str, str]:
    """Return the list's non-empty filters from the query string; other parameters are ignored."""
    query = {
        "state": request.args.get("state", "").strip(),
        "kind": request.args.get("kind", "").strip(),
    }
    return {name: value for name, value in query.items() if value}


def _job_number(value: str) -> int | None:
    """Return the job id that ``value`` writes, or None if it is not a bigint job id."""
    number = whole_number(value, len(str(MAX_JOB_ID)))
    return number if number is not None and number <= MAX_JOB_ID else None


def _job_id(value: str) -> int:
    number = _job_number(value)
    if number is None:
        raise NotFound(f"job {value!r} not found; a job id is a positive whole number")
    return number


def _before(request: Request) -> int | None:
    # A cursor that is not a bigint job id is ignored, so the list starts from the newest job.
    return _job_number(request.args.get("before", ""))


class JobPageRoutes(PageBase):
    @page("GET", JOBS_PAGE)
    def jobs_page(self, request: Request, visitor: Visitor) -> Response:
        actor = self.require_visitor(request, visitor)
        query = _list_query(request)
        before = _before(request)

        status, error = 200, None
        filters: dict[str, Any] = {**query, "limit": JOBS_PAGE_SIZE}
        if before is not None:
            filters["before"] = before
        try:
            found = self.data.list_jobs(actor, **filters)
        except AtlasError as exc:
            found, status, error = {"jobs": [], "next_before": None}, exc.status, str(exc)

        older = None
        if found["next_before"] is not None:
            older = urlencode({**query, "before": found["next_before"]})
        return self.render(
            request,
            visitor,
            "jobs.html",
            status=status,
            error=error,
            query=query,
            states=JOB_STATES,
            jobs=found["jobs"],
            older=older,
            newest=urlencode(query) if before is not None else None,
        )

    @page("GET", JOB_PAGE)
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
        actor = self.require_visitor(request, visitor)
        view = self.data.describe_job_page(actor, job_id)
        return self.render(
            request,
            visitor,
            "job.html",
            status=status,
            error=error,
            job=view["job"],
            actions=view["actions"],
        )

    @page("POST", JOB_PAGE + "/cancel")
    def submit_job_cancel(self, request: Request, visitor: Visitor, job_id: str) -> Response:
        return self._apply("cancel_job", request, visitor, _job_id(job_id))

    @page("POST", JOB_PAGE + "/retry")
    def submit_job_retry(self, request: Request, visitor: Visitor, job_id: str) -> Response:
        return self._apply("retry_job", request, visitor, _job_id(job_id))

    def _apply(self, method: str, request: Request, visitor: Visitor, job_id: int) -> Response:
        actor = self.require_visitor(request, visitor)
        self.form(request, visitor)
        try:
            getattr(self.data, method)(actor, job_id)
        except AtlasError as exc:
            # A job another person cannot see raises NotFound again here, so
            # the error page shows instead of the job.
            message = f"{REJECTION_PREFIXES[method]}: {exc}"
            return self.render_job(request, visitor, job_id, exc.status, message)
        return self.redirect(visitor, job_page_path(job_id))
