"""``atlas tokens``: manage API tokens."""

from __future__ import annotations

import argparse
from typing import Any

from services.toolkit import config as cfg

from ..common import call, say


def register(commands: Any) -> None:
    tokens = commands.add_parser(
        "tokens", help="manage API tokens", description="Manage API tokens."
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    create_token = tokens.add_parser("create", help="create an API token for a user")
    create_token.add_argument("username")
    create_token.add_argument("--description", default="created by atlas tokens create")
    create_token.set_defaults(func=cmd_tokens_create)


def print_token(config: dict[str, Any], token: dict[str, Any]) -> None:
    public_url = str(cfg.setting(config, cfg.PUBLIC_URL)).rstrip("/")
    say(f"token (shown once, store it now): {token['token']}")
    say("use it with vagrant:")
    say(f"  export VAGRANT_SERVER_URL={public_url}")
    say(f"  vagrant cloud auth login --token {token['token']}")


def cmd_tokens_create(config: dict[str, Any], args: argparse.Namespace) -> int:
    token = call(config, "data", "issue_token", args.username, args.description)
    print_token(config, token)
    return 0
