"""``atlas jobs``: list and show jobs, and rebuild their queues from the database."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..common import call, say

REBUILD_TIMEOUT = 600.0  # seconds `atlas jobs rebuild` waits for the dispatcher


def register(commands: Any) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="inspect jobs and rebuild their queues",
        description="Inspect jobs and rebuild their queues.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    list_jobs = jobs.add_parser("list", help="list the newest jobs")
    list_jobs.add_argument(
        "--state",
        choices=["pending", "queued", "running", "retrying", "succeeded", "failed", "cancelled"],
    )
    list_jobs.add_argument("--kind", help="job kind, such as box.inspect")
    list_jobs.add_argument("--box", help="box as USER/NAME")
    list_jobs.add_argument("--limit", type=int, default=25, help="jobs to show, at most 100")
    list_jobs.set_defaults(func=cmd_jobs_list)
    show_job = jobs.add_parser("show", help="show a job with its history")
    show_job.add_argument("job_id", type=int)
    show_job.set_defaults(func=cmd_jobs_show)
    rebuild = jobs.add_parser(
        "rebuild", help="publish every queued job again, after a queue was lost or purged"
    )
    rebuild.set_defaults(func=cmd_jobs_rebuild)


def cmd_jobs_list(config: dict[str, Any], args: argparse.Namespace) -> int:
    filters = {
        key: value
        for key, value in (
            ("state", args.state),
            ("kind", args.kind),
            ("box", args.box),
            ("limit", args.limit),
        )
        if value
    }
    page = call(config, "data", "list_all_jobs", filters)
    if not page["jobs"]:
        say("no jobs match")
        return 0
    say(f"{'ID':>8}  {'STATE':<10} {'KIND':<16} {'ATTEMPT':<8} {'BOX':<24} UPDATED")
    for job in page["jobs"]:
        attempts = f"{job['attempt']}/{job['max_attempts']}"
        say(
            f"{job['id']:>8}  {job['state']:<10} {job['kind']:<16} {attempts:<8} "
            f"{job['box'] or '-':<24} {job['updated_at']}"
        )
    return 0


def cmd_jobs_show(config: dict[str, Any], args: argparse.Namespace) -> int:
    job = call(config, "data", "get_any_job", args.job_id)
    for key in ("id", "kind", "state", "attempt", "max_attempts", "box", "account", "worker"):
        say(f"{key}: {job[key]}")
    say(f"payload: {json.dumps(job['payload'], sort_keys=True)}")
    if job["result"] is not None:
        say(f"result: {json.dumps(job['result'], sort_keys=True)}")
    if job["last_error"]:
        say(f"last error: {job['last_error']}")
    say("history:")
    for entry in job["history"]:
        error = f"  ({entry['error']})" if entry["error"] else ""
        say(
            f"  {entry['at']}  {entry['from'] or '-'} -> {entry['to']}  {entry['trigger']}"
            f"  attempt {entry['attempt']}  by {entry['by']}{error}"
        )
    return 0


def cmd_jobs_rebuild(config: dict[str, Any], args: argparse.Namespace) -> int:
    counts = call(config, "jobs", "rebuild", timeout=REBUILD_TIMEOUT)
    total = sum(counts.values())
    detail = ", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items()))
    say(f"republished {total} queued jobs" + (f" ({detail})" if detail else ""))
    return 0
