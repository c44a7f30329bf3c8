"""Blob storage for binstore: the backend interface and the local-disk backend."""

from __future__ import annotations

from typing import Any

from services.toolkit import config as cfg

from .base import (
    BlobNotFound,
    BlobStorage,
    BlobWriter,
    StorageError,
    StoredBlob,
    StoredObject,
    UploadBusy,
)
from .local import LocalStorage

__all__ = [
    "BlobNotFound",
    "BlobStorage",
    "BlobWriter",
    "LocalStorage",
    "StorageError",
    "StoredBlob",
    "StoredObject",
    "UploadBusy",
    "storage_from_config",
]


def storage_from_config(config: dict[str, Any]) -> BlobStorage:
    """Return the storage backend the configuration names: local disk under ``storage_root``."""
    return LocalStorage(cfg.setting(config, cfg.STORAGE_ROOT))
