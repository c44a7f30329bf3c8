"""Providers waiting for box files, raw HTTP for broken clients, and binstore's stored state."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from sqlalchemy import create_engine, text

from tests.conftest import Client
from tests.integration.test_api_boxes import create_box, create_provider, create_version

SOCKET_TIMEOUT = 30  # seconds a raw test connection waits for the server


@dataclass
class Slot:
    """A provider waiting for its box file, with a direct upload target."""

    client: Client
    box: str
    upload_url: str
    callback_path: str

    @property
    def provider_path(self) -> str:
        return f"/api/v1/box/{self.client.username}/{self.box}/version/1.0.0/provider/libvirt"

    def provider(self) -> dict[str, Any]:
        response = self.client.get(self.provider_path)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def is_uploaded(self) -> bool:
        """Return whether binstore stored the file, whether or not inspection passed it yet."""
        return self.confirm().status_code == 200

    def confirm(self) -> requests.Response:
        """Call the direct upload callback, which reports why an upload was not received."""
        return self.client.put(self.callback_path)

    def new_target(self) -> str:
        response = self.client.get(self.provider_path + "/upload")
        assert response.status_code == 200, response.text
        return str(response.json()["upload_path"])


def new_slot(client: Client, **provider_fields: Any) -> Slot:
    box = create_box(client)
    create_version(client, box)
    create_provider(client, box, **provider_fields)
    path = f"/api/v1/box/{client.username}/{box}/version/1.0.0/provider/libvirt/upload/direct"
    target = client.get(path).json()
    return Slot(client, box, target["upload_path"], target["callback"].replace(client.api_url, ""))


def on_server(url: str, base_url: str) -> str:
    """Return ``url`` with its scheme and address replaced by those of ``base_url``."""
    parsed = urlparse(url)
    return base_url.rstrip("/") + parsed.path + (f"?{parsed.query}" if parsed.query else "")


def open_request(url: str, method: str, headers: dict[str, str]) -> socket.socket:
    """Connect to ``url`` and send the request line and headers, but no body."""
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=SOCKET_TIMEOUT)
    lines = [f"{method} {parsed.path} HTTP/1.1", f"Host: {parsed.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_response(sock: socket.socket, method: str = "PUT") -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


class StoredState:
    """What binstore left on disk under its storage root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def temporary_files(self) -> list[str]:
        return sorted(path.name for path in (self.root / "tmp").iterdir())

    def partial_uploads(self) -> list[str]:
        return sorted(path.name for path in (self.root / "partial").iterdir())

    def blob_path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()


class Database:
    """Direct SQL on the test database, for arranging times that tests cannot wait for."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def execute(self, statement: str, **params: Any) -> list[Any]:
        with self.engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []
