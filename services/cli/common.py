"""Output and RPC helpers that every ``atlas`` command shares."""

from __future__ import annotations

import sys
from typing import Any

from services.toolkit import config as cfg


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
    config: dict[str, Any],
    service: str,
    method: str,
    *args: Any,
    timeout: float | None = None,
    **kwargs: Any,
) -> Any:
    proxy = rpc(config, timeout)
    cluster = proxy.start()
    try:
        return getattr(getattr(cluster, service), method)(*args, **kwargs)
    finally:
        proxy.stop()


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print ``rows`` under ``headers`` in columns as wide as their longest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in [headers, *rows]:
        say(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
