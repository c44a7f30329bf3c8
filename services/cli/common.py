"""Output and RPC helpers that every ``atlas`` command shares."""

from __future__ import annotations

import sys
from typing import Any

from amqp.exceptions import AMQPError
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.utils import sanitize_url

from services.toolkit import config as cfg
from services.toolkit.errors import ServiceUnavailable
from services.toolkit.rpc import BROKER_ERRORS


def say(message: str) -> None:
    print(message, flush=True)


def fail(message: str) -> int:
    print(f"atlas: error: {message}", file=sys.stderr, flush=True)
    return 1


def rpc(config: dict[str, Any], timeout: float | None = None) -> Any:
    """Return an RPC proxy to the cluster; connect it with ``start()``, close it with ``stop()``."""
    from nameko.standalone.rpc import ClusterRpcProxy

    return ClusterRpcProxy(config, timeout=timeout or rpc_timeout(config))


def rpc_timeout(config: dict[str, Any]) -> float:
    """Return ``ATLAS.rpc_timeout``; raise ``ConfigurationError`` unless it is a positive number."""
    value = cfg.setting(config, cfg.RPC_TIMEOUT)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise cfg.ConfigurationError(
            f"rpc_timeout (ATLAS_RPC_TIMEOUT) must be a positive number of seconds, not {value!r}"
        )
    return seconds


def call(
    config: dict[str, Any],
    service: str,
    method: str,
    *args: Any,
    timeout: float | None = None,
    **kwargs: Any,
) -> Any:
    proxy = rpc(config, timeout)
    try:
        cluster = proxy.start()
    except (*BROKER_ERRORS, AMQPError) as exc:
        # A wrong password or vhost closes the connection with a channel error.
        raise ServiceUnavailable(
            f"cannot reach the message broker at {sanitize_url(config[AMQP_URI_CONFIG_KEY])}: "
            f"{exc}; check that RabbitMQ is running and that ATLAS_AMQP_URI names it"
        ) from exc
    try:
        return getattr(getattr(cluster, service), method)(*args, **kwargs)
    except RpcTimeout as exc:
        raise ServiceUnavailable(
            f"the {service} service did not respond to {method} in time; "
            "check that Atlas is running (atlas up)"
        ) from exc
    except UnknownService as exc:
        raise ServiceUnavailable(
            f"no {service} service has ever run on this broker; start Atlas with atlas up"
        ) from exc
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
