"""Entry point of the ``atlas`` command.

Each command lives in its own module under ``services.cli.commands`` and
adds its parser with ``register(commands)``. A new command needs only its
module and an entry in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import sqlalchemy.exc

from services.toolkit import config as cfg
from services.toolkit.errors import AtlasError

from .commands import gc, jobs, migrate, orgs, status, tokens, up, users
from .common import fail

# In the order `atlas --help` lists them.
COMMANDS: tuple[Any, ...] = (up, migrate, users, orgs, tokens, status, gc, jobs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atlas", description="Operate an Atlas box registry.")
    parser.add_argument(
        "--config", help="path of config.yaml (default: ATLAS_CONFIG or ./config.yaml)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
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
    except sqlalchemy.exc.ArgumentError as exc:
        return fail(f"invalid database URL (ATLAS_DATABASE_URL): {exc}")


if __name__ == "__main__":
    sys.exit(main())
