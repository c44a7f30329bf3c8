"""The Jinja2 environment of the web pages, with autoescaping always on.

Values from the API reach templates as plain strings and are escaped. Only
``description_html`` is marked safe in the templates, because the data
service renders it from markdown with raw HTML escaped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/-/static/"

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def _fingerprint(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


# Static files change only with a new release, so their fingerprints are
# computed once; the query string lets browsers cache them for a long time.
STATIC_VERSIONS = {path.name: _fingerprint(path.name) for path in STATIC_DIR.iterdir()}


def static_url(name: str) -> str:
    return f"{STATIC_PREFIX}{name}?v={STATIC_VERSIONS[name]}"


def filesize(size: int | None) -> str:
    if size is None:
        return "–"
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def when(stamp: str | None, seconds: bool = False) -> str:
    """Format an API timestamp as ``2024-05-01 14:03 UTC``, or with ``:05`` seconds."""
    if not stamp:
        return "–"
    parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    pattern = "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    return parsed.astimezone(dt.UTC).strftime(pattern)


MAX_SUMMARY_LENGTH = 300  # characters of a JSON value shown before it is cut


def summary(value: Any) -> str:
    """Format a JSON value compactly for display, cut after ``MAX_SUMMARY_LENGTH`` characters.

    A string is shown as it is, without JSON quotes.
    """
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    if len(text) > MAX_SUMMARY_LENGTH:
        return text[:MAX_SUMMARY_LENGTH] + "…"
    return text


def sentence(message: str) -> str:
    """Capitalize a domain error message and end it with a full stop, for display."""
    text = message.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def box_path(username: str, name: str) -> str:
    return f"/{quote(username)}/boxes/{quote(name)}"


environment = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["filesize"] = filesize
environment.filters["when"] = when
environment.filters["sentence"] = sentence
environment.filters["summary"] = summary
environment.filters["number"] = lambda value: f"{value:,}"
environment.globals["static_url"] = static_url
environment.globals["box_path"] = box_path


def render(template: str, **context: Any) -> str:
    return environment.get_template(template).render(**context)
