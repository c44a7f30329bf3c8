"""A webhook delivery's time limit, against receivers on loopback that respond slowly."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import eventlet
import pytest

from services.toolkit.jobs import JobRun
from services.toolkit.outbound import Allowlist, guarded_session
from services.workers.delivery import DeliveryFailed, deliver

JOB = JobRun(
    id=1,
    kind="webhook.deliver",
    attempt=1,
    payload={"event": "version.released", "delivery_id": "d-1", "data": {"version": "1.0.0"}},
)


class TricklingReceiver:
    """Reads a request, then sends ``head`` and one byte of ``tail`` every 0.2 seconds."""

    def __init__(self, head: bytes, tail: bytes) -> None:
        self.head = head
        self.tail = tail
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.thread = eventlet.spawn(self._serve)
        self.connections: list[eventlet.greenthread.GreenThread] = []

    def _serve(self) -> None:
        while True:
            connection, _ = self.listener.accept()
            self.connections.append(eventlet.spawn(self._answer, connection))

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            connection.sendall(self.head)
            for byte in self.tail:
                eventlet.sleep(0.2)
                connection.sendall(bytes([byte]))

    def stop(self) -> None:
        for thread in [self.thread, *self.connections]:
            thread.kill()
        self.listener.close()


@pytest.fixture
def receivers() -> Iterator[list[TricklingReceiver]]:
    started: list[TricklingReceiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def test_receiver_trickling_headers_times_out(receivers: list[TricklingReceiver]) -> None:
    receiver = TricklingReceiver(b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"a" * 200 + b"\r\n\r\n")
    receivers.append(receiver)

    with (
        guarded_session(Allowlist.parse("127.0.0.1")) as session,
        pytest.raises(DeliveryFailed) as raised,
    ):
        deliver(session, receiver.url, JOB, "secret", timeout=1)

    assert str(raised.value) == (
        f"POST to {receiver.url.removesuffix('/hook')} failed: "
        "the receiver timed out after 1 seconds"
    )


def test_receiver_body_is_not_read(receivers: list[TricklingReceiver]) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    receiver = TricklingReceiver(head, b"x" * 100000)
    receivers.append(receiver)

    with guarded_session(Allowlist.parse("127.0.0.1")) as session:
        outcome = deliver(session, receiver.url, JOB, "secret", timeout=1)

    assert outcome["status"] == 200
