"""Helpers of the web pages: CSRF tokens, redirect targets and formatting."""

from __future__ import annotations

import pytest

from gateway.web.security import Visitor, csrf_token, csrf_valid, local_path
from gateway.web.templating import filesize, render

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
