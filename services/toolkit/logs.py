"""Log context shared by every service: the correlation id and the JSON line format.

A correlation id names one piece of work across services. The gateway takes
it from the ``X-Request-Id`` header or makes a new one. nameko carries every
key of a worker's ``context_data`` in the headers of the RPC calls and
events that the worker sends. So the data service, binstore and the workers
log the same id for one request. ``ContextFilter`` adds it, with the service
name, to every log record; ``PlainFormatter`` writes one line of text and
``JsonFormatter`` one JSON object a line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

from nameko.extensions import DependencyProvider

# Key of the correlation id in nameko's context data, and so in message headers.
CORRELATION_ID = "correlation_id"
REQUEST_ID_HEADER = "X-Request-Id"

# An id from a client is kept only if it matches this pattern. Anything else
# is replaced, so that log lines cannot be forged through the header.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# Query parameters and path values whose content is a credential.
SECRET_NAMES = frozenset({"access_token", "token", "password"})
REDACTED = "[redacted]"

# After eventlet's monkey patching, threading.local keeps one value per green
# thread, which is what a nameko worker runs in.
_current = threading.local()

# Service named in log lines written outside any worker or request, such as
# the Consul registration's; set when a process runs a single service.
_process_service: str | None = None


def set_process_service(name: str | None) -> None:
    global _process_service
    _process_service = name


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def accepted_correlation_id(candidate: str | None) -> str:
    """Return ``candidate`` if it is a usable id, else a new one."""
    if candidate and _VALID_ID.match(candidate):
        return candidate
    return new_correlation_id()


def current_correlation_id() -> str | None:
    return getattr(_current, "correlation_id", None)


def current_service() -> str | None:
    return getattr(_current, "service", None) or _process_service


@contextmanager
def log_context(correlation_id: str | None, service: str | None = None) -> Iterator[None]:
    """Tag the log lines of the current (green) thread with ``correlation_id`` and ``service``."""
    previous = (getattr(_current, "correlation_id", None), getattr(_current, "service", None))
    _current.correlation_id = correlation_id
    _current.service = service
    try:
        yield
    finally:
        _current.correlation_id, _current.service = previous


def redact_query(query: str) -> str:
    """Return ``query`` with the values of credential parameters replaced."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [(key, REDACTED if key.lower() in SECRET_NAMES else value) for key, value in pairs],
        safe="[]",
    )


class ContextFilter(logging.Filter):
    """Add ``correlation_id`` and ``service`` to every record; ``-`` when there is none."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, CORRELATION_ID):
            record.correlation_id = current_correlation_id() or "-"
        if not hasattr(record, "service"):
            record.service = current_service() or "-"
        return True


# Control characters and their escapes in plain log lines; a tab stays as it is.
_CONTROL_ESCAPES = {
    **{code: f"\\x{code:02x}" for code in range(32) if code != 9},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    0x7F: "\\x7f",
}


class PlainFormatter(logging.Formatter):
    """Format a record as one line of text, with control characters in it escaped.

    A request path or header that reaches a message could otherwise start
    a line that looks like another record. A traceback keeps its lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return super().formatMessage(record).translate(_CONTROL_ESCAPES)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message and context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        correlation_id = getattr(record, CORRELATION_ID, None) or current_correlation_id()
        if correlation_id and correlation_id != "-":
            entry[CORRELATION_ID] = correlation_id
        service = getattr(record, "service", None) or current_service()
        if service and service != "-":
            entry["service"] = service
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class CorrelationId(DependencyProvider):
    """Give every worker a correlation id and tag its log lines with it.

    A worker started by an RPC call, an event or an HTTP request keeps the id
    that came with it, and one started by a timer gets a new id. The id is
    written back into ``context_data``, so the worker's own RPC calls and
    events carry it on.
    """

    def worker_setup(self, worker_ctx: Any) -> None:
        # ``context_data`` is a copy; ``data`` is what nameko sends on.
        data = worker_ctx.data
        data[CORRELATION_ID] = accepted_correlation_id(data.get(CORRELATION_ID))
        _current.correlation_id = data[CORRELATION_ID]
        _current.service = self.container.service_name

    def worker_teardown(self, worker_ctx: Any) -> None:
        _current.correlation_id = None
        _current.service = None

    def get_dependency(self, worker_ctx: Any) -> str:
        return str(worker_ctx.data.get(CORRELATION_ID, ""))


def message_headers(worker_ctx: Any) -> dict[str, Any]:
    """Return the AMQP headers nameko would send for ``worker_ctx``'s context data."""
    context = worker_ctx.context_data
    return {f"nameko.{key}": value for key, value in context.items() if value is not None}
