"""HTTP servers on loopback addresses that webhook and import tests aim Atlas at.

``WebhookReceiver`` records each request and responds with the statuses
it is given, in turn. ``BoxSource`` serves one file with ``Range`` support and
can break off its first response after a given number of bytes.
``RedirectLoop`` redirects every request to itself.
``http_from`` gives a requests session whose connections come from one
loopback address, so that limits kept per client address apply to it alone.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import eventlet
import eventlet.wsgi
import requests
from requests.adapters import HTTPAdapter

from tests.conftest import free_port

Handler = Callable[[dict[str, Any], Callable[..., Any]], Any]


class _QuietLog:
    def write(self, text: str) -> None:
        pass


class LoopbackServer:
    """An eventlet WSGI server on ``host`` and a free port, run in a green thread."""

    def __init__(self, app: Handler, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self._socket = eventlet.listen((host, self.port))
        self._thread = eventlet.spawn(
            eventlet.wsgi.server, self._socket, app, log=_QuietLog(), debug=False
        )

    def stop(self) -> None:
        self._thread.kill()
        self._socket.close()


@dataclass
class ReceivedRequest:
    headers: dict[str, str]
    body: bytes


class WebhookReceiver(LoopbackServer):
    """Records every request; responds with ``statuses`` in turn, then with the last one."""

    def __init__(self, statuses: tuple[int, ...] = (200,), host: str = "127.0.0.1") -> None:
        self.statuses = list(statuses)
        self.requests: list[ReceivedRequest] = []
        super().__init__(self._handle, host)

    def _handle(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        self.requests.append(ReceivedRequest(headers, environ["wsgi.input"].read(length)))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        start_response(f"{status} Status", [("Content-Type", "text/plain")])
        return [b"ok" if status < 300 else b"failed on purpose"]


class SourceBrokeOff(Exception):
    """Raised inside the response so that the server drops the connection."""


class BoxSource(LoopbackServer):
    """Serves ``content`` at ``/base.box`` with ``Range``; ``break_after`` cuts the first response.

    ``replacement``, if given, is served from the second request on, as if
    the file changed. Other paths get 404. ``ranges`` records the ``Range``
    header of each request. With ``hold_at``, a response stops at that byte
    (and sets ``holding``) until ``resume`` is set, and sets ``sent`` once
    its last byte went out. Without ``with_length``, a whole-file response
    has no Content-Length and goes out in chunks.
    """

    PATH = "/base.box"
    PIECE = 16 * 1024

    def __init__(
        self,
        content: bytes,
        break_after: int | None = None,
        host: str = "127.0.0.1",
        replacement: bytes | None = None,
        hold_at: int | None = None,
        with_length: bool = True,
    ) -> None:
        self.content = content
        self.with_length = with_length
        self.replacement = replacement
        self.break_after = break_after
        self.hold_at = hold_at
        self.holding = threading.Event()
        self.resume = threading.Event()
        self.sent = threading.Event()
        self.ranges: list[str | None] = []
        super().__init__(self._handle, host)
        self.file_url = self.url + self.PATH

    def _handle(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        requested = environ.get("HTTP_RANGE")
        self.ranges.append(requested)
        if len(self.ranges) == 2 and self.replacement is not None:
            self.content = self.replacement
        if environ["PATH_INFO"] != self.PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        total = len(self.content)
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", requested or "")
        if match:
            start = int(match.group(1))
            start_response(
                "206 Partial Content",
                [
                    ("Content-Length", str(total - start)),
                    ("Content-Range", f"bytes {start}-{total - 1}/{total}"),
                ],
            )
        elif self.with_length:
            start_response("200 OK", [("Content-Length", str(total)), ("Accept-Ranges", "bytes")])
        else:
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
        cut = self.break_after
        self.break_after = None
        return self._body(start, cut)

    def _body(self, start: int, cut: int | None) -> Iterator[bytes]:
        position = start
        while position < len(self.content):
            if cut is not None and position >= cut:
                raise SourceBrokeOff(f"dropping the connection at byte {position}")
            if self.hold_at is not None and position >= self.hold_at:
                self.holding.set()
                self.resume.wait()
            end = min(position + self.PIECE, len(self.content))
            if cut is not None:
                end = min(end, cut)
            if self.hold_at is not None and position < self.hold_at:
                end = min(end, self.hold_at)
            yield self.content[position:end]
            position = end
        self.sent.set()


class RedirectLoop(LoopbackServer):
    """Redirects every request to the same path, for ever."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(self._handle, host)

    def _handle(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("302 Found", [("Location", self.url + environ["PATH_INFO"])])
        return [b""]


class SourceAddressAdapter(HTTPAdapter):
    """Transport adapter that connects from one local address."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def new_loopback_address() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def http_from(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", SourceAddressAdapter(address))
    return session
