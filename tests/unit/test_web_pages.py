"""Helpers of the web pages: CSRF tokens, redirect targets and formatting."""

from __future__ import annotations

import pytest

from gateway.web.security import Visitor, csrf_token, csrf_valid, local_path
from gateway.web.templating import MAX_SUMMARY_LENGTH, filesize, render, summary, when

KEY = b"k" * 32


def test_csrf_token_is_bound_to_browser_and_session() -> None:
    signed_in = Visitor(actor={"id": 1, "username": "ann"}, session="s1", csrf_seed="seed")
    token = csrf_token(KEY, signed_in)

    assert csrf_valid(KEY, signed_in, token)
    assert not csrf_valid(KEY, Visitor(None, "s1", "other-seed"), token)
    assert not csrf_valid(KEY, Visitor(None, "s2", "seed"), token)
    assert not csrf_valid(KEY, Visitor(None, None, "seed"), token)
    assert not csrf_valid(b"x" * 32, signed_in, token)


def test_csrf_token_rejected_for_new_cookie() -> None:
    visitor = Visitor(actor=None, session=None, csrf_seed="seed", seed_is_new=True)

    assert not csrf_valid(KEY, visitor, csrf_token(KEY, visitor))


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("/acme/boxes/base", "/acme/boxes/base"),
        ("/-/tokens?x=1", "/-/tokens?x=1"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\nLocation: x", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_local_path_keeps_only_paths_on_this_site(requested: str | None, expected: str) -> None:
    assert local_path(requested) == expected


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, "–"), (0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KiB"), (3 << 30, "3.0 GiB")],
)
def test_filesize_uses_binary_units(size: int | None, text: str) -> None:
    assert filesize(size) == text


def test_templates_escape_values() -> None:
    html = render(
        "error.html",
        visitor=None,
        code=404,
        message='<script>alert("x")</script>',
        current_path="/",
    )

    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


def test_when_shows_seconds_on_request() -> None:
    assert when("2026-05-01T14:03:09Z") == "2026-05-01 14:03 UTC"
    assert when("2026-05-01T14:03:09Z", seconds=True) == "2026-05-01 14:03:09 UTC"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain text", "plain text"),
        (42, "42"),
        (None, "null"),
        ({"a": [1, 2]}, '{"a": [1, 2]}'),
    ],
)
def test_summary_writes_compact_json(value: object, text: str) -> None:
    assert summary(value) == text


def test_summary_cuts_long_values() -> None:
    text = summary("x" * (MAX_SUMMARY_LENGTH + 10))

    assert text == "x" * MAX_SUMMARY_LENGTH + "…"


def test_job_page_escapes_payload_and_history() -> None:
    job = {
        "id": 7,
        "kind": "box.inspect",
        "state": "failed",
        "attempt": 1,
        "max_attempts": 1,
        "box": None,
        "last_error": "<b>bad</b>",
        "result": None,
        "worker": None,
        "run_after": None,
        "created_at": "2026-05-01T14:03:09Z",
        "updated_at": "2026-05-01T14:03:09Z",
        "finished_at": None,
        "payload": {"url": "<img src=x>"},
        "history": [
            {
                "from": "running",
                "to": "failed",
                "trigger": "fail",
                "attempt": 1,
                "at": "2026-05-01T14:03:09Z",
                "by": "<i>worker</i>",
                "error": "<b>bad</b>",
            }
        ],
    }

    html = render(
        "job.html",
        visitor=None,
        job=job,
        actions=["retry"],
        csrf_field="csrf_token",
        csrf_token="t",
        current_path="/-/jobs/7",
    )

    assert "<b>" not in html
    assert "<img" not in html
    assert "<i>" not in html
    assert 'action="/-/jobs/7/retry"' in html
    assert "/cancel" not in html
