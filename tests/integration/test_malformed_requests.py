"""Malformed HTTP requests, rejected before or during routing, get the API's error format."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlparse

import pytest
from eventlet import wsgi

from tests.conftest import Client, Suite


def send_raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` unchanged and return the status, headers and body of the response."""
    address = urlparse(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


LONG = "a" * (wsgi.MAX_REQUEST_LINE + 10)
CASES = {
    "long request line": (f"GET /api/v1/search?q={LONG} HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "long header line": (f"GET /api/v1/search HTTP/1.1\r\nHost: x\r\nX-Long: {LONG}\r\n\r\n", 431),
    "headers too large": (
        "GET /api/v1/search HTTP/1.1\r\nHost: x\r\n"
        + "".join(f"X-Header-{n}: {'b' * 4000}\r\n" for n in range(20))
        + "\r\n",
        431,
    ),
    "negative content length": (
        "POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        400,
    ),
    "content length not a number": (
        "POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        400,
    ),
    "two different content lengths": (
        "POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        "Content-Length: 60\r\n\r\n{}",
        400,
    ),
    "content length and chunked together": (
        "POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "header line without a colon": (
        "POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\nNot a header\r\nContent-Length: 2\r\n\r\n{}",
        400,
    ),
    "header line without a name": (
        "GET /api/v1/search HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n",
        400,
    ),
    "first header line folded": ("GET /api/v1/search HTTP/1.1\r\n folded\r\nHost: x\r\n\r\n", 400),
    "header folded over two lines": (
        "GET /api/v1/search HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n two\r\n\r\n",
        400,
    ),
    "garbage request line": ("GARBAGE\r\n\r\n", 400),
    "unknown http version": ("GET /api/v1/search HTTP/9.9\r\nHost: x\r\n\r\n", 505),
    "too many headers": (
        "GET /api/v1/search HTTP/1.1\r\nHost: x\r\n"
        + "".join(f"X-Header-{n}: b\r\n" for n in range(120))
        + "\r\n",
        431,
    ),
}


@pytest.mark.parametrize("content_type", ["message/rfc822", "multipart/mixed; boundary=x"])
def test_mail_content_types_pass_header_checks(suite: Suite, content_type: str) -> None:
    request = (
        f"POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )

    status, _, body = send_raw(suite.api_url, request.encode())

    assert status == 401, body


@pytest.mark.parametrize("case", CASES)
def test_rejection_has_error_format(suite: Suite, case: str) -> None:
    request, expected_status = CASES[case]

    status, headers, body = send_raw(suite.api_url, request.encode())

    assert status == expected_status
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    document = json.loads(body)
    assert document["success"] is False
    assert len(document["errors"]) == 1
    assert document["errors"][0]


def test_broken_chunked_body_is_400(suite: Suite, user: Client) -> None:
    request = (
        "POST /api/v1/boxes HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {user.token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "zz\r\n{}\r\n0\r\n\r\n"
    )

    status, headers, body = send_raw(suite.api_url, request.encode())

    assert status == 400
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["success"] is False
    assert "chunked" in document["errors"][0]
