"""Entry point of the ``atlas`` command."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import requests

from services.toolkit import config as cfg
from services.toolkit.errors import AtlasError

from .database import ROOT, migrate
from .supervisor import ServiceProcess, Supervisor, service_env

# Services `atlas up` starts, in order; each runs in its own process.
SUITE = ("data", "binstore", "gateway", "jobs", "workers")
READY_TIMEOUT = 60.0  # seconds `atlas up` waits for /health to pass
REBUILD_TIMEOUT = 600.0  # seconds `atlas jobs rebuild` waits for the dispatcher


def say(message: str) -> None:
    print(message, flush=True)


def fail(message: str) -> int:
    print(f"atlas: error: {message}", file=sys.stderr, flush=True)
    return 1


def rpc(config: dict[str, Any], timeout: float | None = None) -> Any:
    """Return a connected RPC proxy to the cluster; close it with ``stop()``."""
    from nameko.standalone.rpc import ClusterRpcProxy

    return ClusterRpcProxy(config, timeout=timeout or float(cfg.setting(config, cfg.RPC_TIMEOUT)))


def call(
    config: dict[str, Any], service: str, method: str, *args: Any, timeout: float | None = None
) -> Any:
    proxy = rpc(config, timeout)
    cluster = proxy.start()
    try:
        return getattr(getattr(cluster, service), method)(*args)
    finally:
        proxy.stop()


def ensure_secret_key(config: dict[str, Any], state_dir: Path) -> str:
    """Return the configured secret key, or one kept in ``state_dir`` and made on first use."""
    configured = cfg.setting(config, cfg.SECRET_KEY)
    if configured:
        return str(configured)
    key_file = state_dir / "secret_key"
    if not key_file.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


# Commands


def cmd_migrate(config: dict[str, Any], args: argparse.Namespace) -> int:
    url = cfg.database_url(config)
    migrate(url)
    say("database schema is up to date")
    return 0


def wait_until_ready(health_url: str, supervisor: Supervisor) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and not supervisor.stopping:
        try:
            if requests.get(health_url, timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def cmd_up(config: dict[str, Any], args: argparse.Namespace) -> int:
    migrate(cfg.database_url(config))
    state_dir = Path(os.environ.get("ATLAS_STATE_DIR", ROOT / "var"))
    env = service_env(
        dict(os.environ),
        ATLAS_SECRET_KEY=ensure_secret_key(config, state_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    addresses = {
        "gateway": str(cfg.setting(config, cfg.GATEWAY_ADDRESS)),
        "binstore": str(cfg.setting(config, cfg.BINSTORE_ADDRESS)),
    }
    processes = [
        ServiceProcess(
            name,
            service_env(env, ATLAS_WEB_SERVER_ADDRESS=addresses[name])
            if name in addresses
            else env,
        )
        for name in SUITE
    ]
    supervisor = Supervisor(processes)
    supervisor.start()
    public_url = str(cfg.setting(config, cfg.PUBLIC_URL)).rstrip("/")
    if wait_until_ready(f"http://{addresses['gateway']}/health", supervisor):
        say(
            f"Atlas is up: API at {public_url}, binstore at {cfg.setting(config, cfg.BINSTORE_URL)}"
        )
        say("Press Ctrl+C to stop.")
    elif not supervisor.stopping:
        say(f"warning: {public_url}/health did not pass within {READY_TIMEOUT:g} seconds")
    supervisor.watch(say)
    say("Atlas stopped")
    return 0


def cmd_users_create(config: dict[str, Any], args: argparse.Namespace) -> int:
    password = args.password or os.environ.get("ATLAS_PASSWORD")
    user = call(config, "data", "create_user", args.username, password, args.email)
    say(f"created user {user['username']}")
    if not args.no_token:
        token = call(config, "data", "issue_token", args.username, "created by atlas users create")
        print_token(config, token)
    return 0


def print_token(config: dict[str, Any], token: dict[str, Any]) -> None:
    public_url = str(cfg.setting(config, cfg.PUBLIC_URL)).rstrip("/")
    say(f"token (shown once, store it now): {token['token']}")
    say("use it with vagrant:")
    say(f"  export VAGRANT_SERVER_URL={public_url}")
    say(f"  vagrant cloud auth login --token {token['token']}")


def cmd_orgs_create(config: dict[str, Any], args: argparse.Namespace) -> int:
    org = call(config, "data", "create_organization", args.name, args.owner)
    say(f"created organization {org['username']} owned by {args.owner}")
    return 0


def cmd_orgs_add_member(config: dict[str, Any], args: argparse.Namespace) -> int:
    member = call(config, "data", "add_member", args.organization, args.username, args.role)
    say(f"{member['username']} is now {member['role']} of {member['organization']}")
    return 0


def cmd_tokens_create(config: dict[str, Any], args: argparse.Namespace) -> int:
    token = call(config, "data", "issue_token", args.username, args.description)
    print_token(config, token)
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atlas", description="Operate an Atlas box registry.")
    parser.add_argument(
        "--config", help="path of config.yaml (default: ATLAS_CONFIG or ./config.yaml)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="migrate the database and start every service")
    up.set_defaults(func=cmd_up)

    migrate_cmd = commands.add_parser("migrate", help="create the database and upgrade its schema")
    migrate_cmd.set_defaults(func=cmd_migrate)

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create_user = users.add_parser("create", help="create a user and print an API token")
    create_user.add_argument("username")
    create_user.add_argument(
        "--password", help="password for `vagrant cloud auth login` (or ATLAS_PASSWORD)"
    )
    create_user.add_argument("--email")
    create_user.add_argument("--no-token", action="store_true", help="do not create an API token")
    create_user.set_defaults(func=cmd_users_create)

    orgs = commands.add_parser("orgs", help="manage organizations").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create_org = orgs.add_parser("create", help="create an organization")
    create_org.add_argument("name")
    create_org.add_argument("--owner", required=True, help="user who becomes its owner")
    create_org.set_defaults(func=cmd_orgs_create)
    add_member = orgs.add_parser(
        "add-member", help="add a user to an organization or change a role"
    )
    add_member.add_argument("organization")
    add_member.add_argument("username")
    add_member.add_argument("--role", default="member", choices=["owner", "admin", "member"])
    add_member.set_defaults(func=cmd_orgs_add_member)

    tokens = commands.add_parser("tokens", help="manage API tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create_token = tokens.add_parser("create", help="create an API token for a user")
    create_token.add_argument("username")
    create_token.add_argument("--description", default="created by atlas tokens create")
    create_token.set_defaults(func=cmd_tokens_create)

    jobs = commands.add_parser("jobs", help="inspect jobs and rebuild their queues").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = cfg.load_config(args.config)
        return int(args.func(config, args))
    except AtlasError as exc:
        return fail(str(exc))
    except cfg.ConfigurationError as exc:
        return fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
