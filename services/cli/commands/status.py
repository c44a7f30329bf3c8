"""``atlas status``: print the suite's health, as the gateway's ``GET /health`` reports it."""

from __future__ import annotations

import argparse
import json
from typing import Any

import requests

from services.toolkit import config as cfg

from ..common import fail, print_table, say

REQUEST_TIMEOUT = 30.0  # seconds; the gateway itself waits ATLAS.health_timeout per service


def register(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="show the health of every service",
        description="Request GET /health from the gateway and print each service instance "
        "with its status. Exits with 0 when every service passes and 1 otherwise.",
    )
    status.add_argument(
        "--url",
        help="base URL of the gateway (default: ATLAS.public_url, set by ATLAS_PUBLIC_URL)",
    )
    status.add_argument(
        "--json", action="store_true", help="print the gateway's JSON report instead of a table"
    )
    status.set_defaults(func=cmd_status)


def cmd_status(config: dict[str, Any], args: argparse.Namespace) -> int:
    base = (args.url or str(cfg.setting(config, cfg.PUBLIC_URL))).rstrip("/")
    url = f"{base}/health"
    try:
        response = requests.get(url, timeout=REQUEST_TIMEOUT)
        report = response.json()
    except requests.RequestException as exc:
        return fail(f"cannot reach the gateway at {url}: {exc}; start Atlas with `atlas up`")
    except ValueError:
        return fail(f"{url} answered {response.status_code} without a JSON body")

    if args.json:
        say(json.dumps(report, indent=2, sort_keys=True))
    elif "services" not in report:
        # The gateway could not build a report, for example because Consul is down.
        return fail("; ".join(report.get("errors", [])) or f"{url} answered {response.status_code}")
    else:
        print_report(report)
    return 0 if report.get("status") == "passing" else 1


def print_report(report: dict[str, Any]) -> None:
    rows = [
        [name, instance.get("id", "-"), instance.get("status", "-"), instance.get("output", "")]
        for name, service in sorted(report["services"].items())
        for instance in service.get("instances", [])
    ]
    print_table(["SERVICE", "INSTANCE", "STATUS", "DETAIL"], rows)
    say("")
    say(f"Atlas is {report['status']} (health from {report.get('source', 'unknown')})")
