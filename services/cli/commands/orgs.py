"""``atlas orgs``: manage organizations and their members."""

from __future__ import annotations

import argparse
from typing import Any

from ..common import call, say


def register(commands: Any) -> None:
    orgs = commands.add_parser(
        "orgs", help="manage organizations", description="Manage organizations."
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
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


def cmd_orgs_create(config: dict[str, Any], args: argparse.Namespace) -> int:
    org = call(config, "data", "create_organization", args.name, args.owner)
    say(f"created organization {org['username']} owned by {args.owner}")
    return 0


def cmd_orgs_add_member(config: dict[str, Any], args: argparse.Namespace) -> int:
    member = call(config, "data", "add_member", args.organization, args.username, args.role)
    say(f"{member['username']} is now {member['role']} of {member['organization']}")
    return 0
