"""Log context: correlation ids, the JSON line format and redaction of credentials."""

from __future__ import annotations

import json
import logging
import sys

from services.toolkit.logs import (
    ContextFilter,
    JsonFormatter,
    PlainFormatter,
    accepted_correlation_id,
    log_context,
    redact_query,
)


def record(message: str = "stored %s", *args: object) -> logging.LogRecord:
    return logging.LogRecord("atlas.test", logging.WARNING, __file__, 1, message, args, None)


def test_json_line_carries_context() -> None:
    entry = record("stored %s", "blob")
    with log_context("req-1", "binstore"):
        ContextFilter().filter(entry)
    line = JsonFormatter().format(entry)

    parsed = json.loads(line)
    assert parsed["message"] == "stored blob"
    assert parsed["level"] == "WARNING"
    assert parsed["logger"] == "atlas.test"
    assert parsed["correlation_id"] == "req-1"
    assert parsed["service"] == "binstore"
    assert parsed["time"].endswith("+00:00")


def test_json_line_includes_the_exception() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        entry = logging.LogRecord(
            "atlas.test", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info()
        )

    parsed = json.loads(JsonFormatter().format(entry))

    assert "ValueError: broken" in parsed["exception"]


def test_filter_marks_records_outside_any_request() -> None:
    entry = record()
    ContextFilter().filter(entry)

    assert entry.correlation_id == "-"
    assert entry.service == "-"


def test_log_context_restores_the_outer_id() -> None:
    with log_context("outer", "gateway"):
        with log_context("inner", "data"):
            pass
        entry = record()
        ContextFilter().filter(entry)

    assert entry.correlation_id == "outer"


def test_redact_query_hides_credentials_only() -> None:
    redacted = redact_query("access_token=s3cret&q=ubuntu&token=abc&page=2")

    assert redacted == "access_token=[redacted]&q=ubuntu&token=[redacted]&page=2"


def test_correlation_id_from_client_is_kept_when_plain() -> None:
    assert accepted_correlation_id("build-42.step_3:a") == "build-42.step_3:a"
    assert accepted_correlation_id("two words") != "two words"
    assert accepted_correlation_id("x" * 65) != "x" * 65
    assert len(accepted_correlation_id(None)) == 32


def test_plain_line_escapes_control_characters() -> None:
    formatter = PlainFormatter(fmt="%(levelname)s %(message)s")
    entry = logging.LogRecord(
        "gateway", logging.INFO, __file__, 1, "GET /a\r\n2026 ERROR forged\x1b[31m", None, None
    )

    line = formatter.format(entry)

    assert line == "INFO GET /a\\r\\n2026 ERROR forged\\x1b[31m"


def test_plain_traceback_keeps_its_lines() -> None:
    formatter = PlainFormatter(fmt="%(message)s")
    try:
        raise ValueError("broken")
    except ValueError:
        entry = logging.LogRecord(
            "gateway", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )

    line = formatter.format(entry)

    assert line.startswith("failed\nTraceback (most recent call last):\n")
