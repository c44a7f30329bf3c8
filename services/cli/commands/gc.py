"""``atlas gc``: delete unreferenced box files, stale uploads and expired upload targets."""

from __future__ import annotations

import argparse
from typing import Any

from ..common import call, say

GC_TIMEOUT = 600.0  # seconds `atlas gc` waits; a large store takes long to list


def register(commands: Any) -> None:
    gc = commands.add_parser(
        "gc",
        help="delete unreferenced blobs, stale uploads and expired upload targets",
        description="Delete unreferenced blobs, stale uploads and expired upload targets now.",
    )
    gc.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted and delete nothing"
    )
    gc.add_argument(
        "--timeout",
        type=float,
        default=GC_TIMEOUT,
        help=f"seconds to wait for binstore to finish (default {GC_TIMEOUT:g})",
    )
    gc.set_defaults(func=cmd_gc)


def cmd_gc(config: dict[str, Any], args: argparse.Namespace) -> int:
    report = call(config, "binstore", "collect_garbage", args.dry_run, timeout=args.timeout)
    verb = "would delete" if args.dry_run else "deleted"
    for blob in report["blobs"]:
        say(f"{verb} blob {blob['sha256']} ({blob['size']} bytes): {blob['reason']}")
    for partial in report["partial_uploads"]:
        say(f"{verb} partial upload {partial['name']} ({partial['size']} bytes)")
    for temporary in report["temporary_files"]:
        say(f"{verb} temporary file {temporary['name']} ({temporary['size']} bytes)")
    say(f"{verb} {report['expired_upload_targets']} expired upload targets")
    say(f"{verb} {report['freed_bytes']} bytes in all")
    say(
        f"{report['waiting_blobs']} unreferenced blobs are kept until their grace period "
        f"of {report['grace_period']:g} seconds has passed"
    )
    return 0
