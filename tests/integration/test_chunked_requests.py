"""Request bodies sent chunked, without Content-Length, reach the API within its limits."""

from __future__ import annotations

import json
from collections.abc import Iterator

from tests.conftest import Client, unique
from tests.integration.binstore_helpers import chunk, open_request, read_response


def chunked(data: bytes, size: int = 7) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_json_body_is_read(user: Client) -> None:
    name = unique("box")
    body = json.dumps({"username": user.username, "name": name}).encode()

    response = user.post(
        "/api/v1/boxes", data=chunked(body), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == name


def test_chunked_json_body_over_limit_is_413(user: Client) -> None:
    sock = open_request(
        user.api_url + "/api/v1/boxes",
        "POST",
        {
            "Authorization": f"Bearer {user.token}",
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
    )

    # The body never ends: only a server that stops reading at the limit responds.
    sock.sendall(chunk(b'{"description": "'))
    for _ in range(32):
        sock.sendall(chunk(b"x" * 64 * 1024))
    status, _, body = read_response(sock, "POST")
    sock.close()

    assert status == 413
    assert b"request body exceeds 1048576 bytes" in body
