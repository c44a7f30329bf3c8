"""``atlas users``: manage users."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..common import call, say
from .tokens import print_token


def register(commands: Any) -> None:
    users = commands.add_parser(
        "users", help="manage users", description="Manage users."
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    create_user = users.add_parser("create", help="create a user and print an API token")
    create_user.add_argument("username")
    create_user.add_argument(
        "--password", help="password for `vagrant cloud auth login` (or ATLAS_PASSWORD)"
    )
    create_user.add_argument("--email")
    create_user.add_argument("--no-token", action="store_true", help="do not create an API token")
    create_user.set_defaults(func=cmd_users_create)


def cmd_users_create(config: dict[str, Any], args: argparse.Namespace) -> int:
    password = args.password or os.environ.get("ATLAS_PASSWORD")
    user = call(config, "data", "create_user", args.username, password, args.email)
    say(f"created user {user['username']}")
    if not args.no_token:
        token = call(config, "data", "issue_token", args.username, "created by atlas users create")
        print_token(config, token)
    return 0
