"""Garbage collection of stored files that nothing refers to any more.

The data service decides which artifacts are unreferenced; binstore owns
the files and removes, each only after the grace period:

- blobs of artifacts no provider referred to for the grace period;
- blobs without an artifact row (an upload whose target expired before it
  could be attached, or a crash between storing and attaching);
- partial uploads whose target was completed, or expired the grace period ago;
- temporary files not written to for the grace period (left by a crash);
- expired upload targets, whose rows the data service deletes.

A blob is deleted only if it was not stored again within the grace period.
This spares a blob that an upload of the same content committed meanwhile,
because that upload attaches it to its provider within an RPC timeout,
which is far shorter than any sensible grace period.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from services.toolkit.numbers import whole_number
from services.toolkit.threads import run_in_thread

from .storage import BlobStorage, StoredObject

log = logging.getLogger(__name__)

BATCH_SIZE = 1000  # digests asked about per call to the data service


def collect_garbage(
    storage: BlobStorage, data: Any, grace_period: float, dry_run: bool
) -> dict[str, Any]:
    """Remove garbage older than ``grace_period`` seconds and return what was (or would be) removed.

    A dry run removes nothing. The result lists ``blobs``, ``partial_uploads``
    and ``temporary_files``, each entry with its ``size`` in bytes, and counts
    ``expired_upload_targets`` and ``waiting_blobs``, the unreferenced blobs
    still inside the grace period.
    """
    cutoff = time.time() - grace_period
    report: dict[str, Any] = {
        "dry_run": dry_run,
        "grace_period": grace_period,
        "blobs": [],
        "partial_uploads": [],
        "temporary_files": [],
    }

    unreferenced = data.collect_unreferenced_artifacts(grace_period, dry_run)
    report["waiting_blobs"] = unreferenced["waiting"]
    for artifact in unreferenced["artifacts"]:
        sha256 = artifact["sha256"]
        if dry_run or run_in_thread(storage.delete_blob, sha256, cutoff):
            report["blobs"].append(
                {"sha256": sha256, "size": artifact["size"], "reason": "unreferenced"}
            )

    for batch in _batches(_older_than(run_in_thread(list, storage.iter_blobs()), cutoff)):
        known = set(data.known_artifacts([blob.name for blob in batch]))
        for blob in batch:
            if blob.name in known:
                continue
            if dry_run or run_in_thread(storage.delete_blob, blob.name, cutoff):
                report["blobs"].append(
                    {"sha256": blob.name, "size": blob.size, "reason": "no artifact record"}
                )

    partials = run_in_thread(list, storage.iter_partials())
    target_ids = [
        number for partial in partials if (number := whole_number(partial.name)) is not None
    ]
    live = {str(target_id) for target_id in data.live_upload_targets(target_ids, grace_period)}
    for partial in partials:
        if partial.name in live:
            continue
        if dry_run or run_in_thread(storage.delete_partial, partial.name):
            report["partial_uploads"].append({"name": partial.name, "size": partial.size})

    report["expired_upload_targets"] = data.remove_expired_upload_targets(grace_period, dry_run)

    for temporary in _older_than(run_in_thread(list, storage.iter_temporary()), cutoff):
        if dry_run or run_in_thread(storage.delete_temporary, temporary.name, cutoff):
            report["temporary_files"].append({"name": temporary.name, "size": temporary.size})

    report["freed_bytes"] = sum(
        entry["size"]
        for kind in ("blobs", "partial_uploads", "temporary_files")
        for entry in report[kind]
    )
    if not dry_run:
        log.info(
            "garbage collection removed %d blobs, %d partial uploads, %d temporary files "
            "and %d upload targets, freeing %d bytes",
            len(report["blobs"]),
            len(report["partial_uploads"]),
            len(report["temporary_files"]),
            report["expired_upload_targets"],
            report["freed_bytes"],
        )
    return report


def _older_than(entries: list[StoredObject], cutoff: float) -> Iterator[StoredObject]:
    return (entry for entry in entries if entry.modified_at < cutoff)


def _batches(entries: Iterator[StoredObject]) -> Iterator[list[StoredObject]]:
    batch: list[StoredObject] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) == BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch
