"""``atlas jobs``: list and show jobs, and republish queued jobs after a queue loss."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..common import call, print_table, say

REBUILD_TIMEOUT = 600.0  # seconds `atlas jobs rebuild` waits; every queued job is republished


def register(commands: Any) -> None:
    jobs = commands.add_parser("jobs", help="list, show and rebuild jobs")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--state", help="only jobs in this state, for example failed")
    listing.add_argument("--kind", help="only jobs of this kind, for example box.inspect")
    listing.add_argument("--box", help="only jobs of this box, as username/name")
    listing.add_argument("--limit", type=int, default=50, help="jobs to list (1-100, default 50)")
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="show a job with its history")
    show.add_argument("job_id", type=int)
    show.set_defaults(func=cmd_show)

    rebuild = actions.add_parser(
        "rebuild",
        help="republish every queued job to its queue",
        description="Republish every queued job from the database, for example after a "
        "queue was deleted or purged. Duplicate messages are harmless: a job starts once.",
    )
    rebuild.set_defaults(func=cmd_rebuild)


def cmd_list(config: dict[str, Any], args: argparse.Namespace) -> int:
    filters = {
        key: value
        for key, value in (("state", args.state), ("kind", args.kind), ("box", args.box))
        if value
    }
    page = call(config, "data", "find_jobs", limit=args.limit, **filters)
    rows = [
        [
            str(job["id"]),
            job["kind"],
            job["state"],
            f"{job['attempt']}/{job['max_attempts']}",
            job["box"] or "-",
            job["updated_at"],
        ]
        for job in page["jobs"]
    ]
    print_table(["ID", "KIND", "STATE", "ATTEMPTS", "BOX", "UPDATED"], rows)
    return 0


def cmd_show(config: dict[str, Any], args: argparse.Namespace) -> int:
    job = call(config, "data", "describe_job", args.job_id)
    say(f"job {job['id']}: {job['kind']} is {job['state']}")
    say(f"attempts: {job['attempt']} of {job['max_attempts']}")
    if job["box"]:
        say(f"box: {job['box']}")
    if job["last_error"]:
        say(f"last error: {job['last_error']}")
    if job["result"] is not None:
        say(f"result: {json.dumps(job['result'], sort_keys=True)}")
    say("history:")
    rows = [
        [
            step["at"],
            f"{step['from']} -> {step['to']}",
            step["trigger"],
            str(step["attempt"]),
            step["by"] or "-",
            step["error"] or "",
        ]
        for step in job["history"]
    ]
    print_table(["AT", "CHANGE", "TRIGGER", "ATTEMPT", "BY", "ERROR"], rows)
    return 0


def cmd_rebuild(config: dict[str, Any], args: argparse.Namespace) -> int:
    count = call(config, "jobs", "rebuild", timeout=REBUILD_TIMEOUT)
    say(f"republished {count} queued jobs")
    return 0
