"""The fault proxy against a real echo server on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.faults.proxy import FaultProxy, ProxyError

WAIT = 10  # seconds a test waits for the proxy or the server to get somewhere


class EchoServer:
    """A TCP server that sends back every byte it receives and records them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.received = b""
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._echo, args=(client,), daemon=True).start()

    def _echo(self, client: socket.socket) -> None:
        with client:
            while data := self._recv(client):
                self.received += data
                client.sendall(data)

    @staticmethod
    def _recv(client: socket.socket) -> bytes:
        try:
            return client.recv(65536)
        except OSError:
            return b""

    def close(self) -> None:
        self._stopping = True
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(f"127.0.0.1:{echo.port}") as running:
        yield running


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT)


def exchange(sock: socket.socket, message: bytes) -> bytes:
    sock.sendall(message)
    received = b""
    while len(received) < len(message):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {WAIT} seconds")
        time.sleep(0.05)


def test_proxy_forwards_both_ways(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert exchange(sock, b"hello") == b"hello"
        assert exchange(sock, b"x" * 200_000) == b"x" * 200_000
    assert proxy.stats().accepted == 1


def test_cut_resets_open_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert exchange(sock, b"before") == b"before"
        proxy.cut()
        with pytest.raises(ConnectionError):
            exchange(sock, b"after")
    assert proxy.stats().open == 0


def test_cut_leaves_new_connections_working(proxy: FaultProxy) -> None:
    first = connect(proxy)
    proxy.cut()
    first.close()
    with connect(proxy) as sock:
        assert exchange(sock, b"again") == b"again"


def test_refuse_rejects_new_connections(proxy: FaultProxy) -> None:
    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)


def test_refuse_keeps_open_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.refuse()
        assert exchange(sock, b"still here") == b"still here"


def test_refuse_keeps_the_port(proxy: FaultProxy) -> None:
    proxy.refuse()
    with socket.socket() as squatter, pytest.raises(OSError):
        squatter.bind(("127.0.0.1", proxy.port))


def test_resume_reuses_the_port(proxy: FaultProxy) -> None:
    port = proxy.port
    proxy.refuse()
    proxy.resume()
    with connect(proxy) as sock:
        assert proxy.port == port
        assert exchange(sock, b"back") == b"back"


def test_down_resets_and_rejects(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.down()
        with pytest.raises(ConnectionError):
            exchange(sock, b"lost")
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)


def test_blackhole_holds_data_until_resume(proxy: FaultProxy, echo: EchoServer) -> None:
    with connect(proxy) as sock:
        assert exchange(sock, b"one") == b"one"
        proxy.blackhole()
        sock.sendall(b"two")
        wait_until(lambda: proxy.stats().holding == 1, "the proxy holding data")
        assert echo.received == b"one"

        proxy.resume()
        assert sock.recv(3) == b"two"
    assert echo.received == b"onetwo"


def test_blackhole_accepts_but_delays_new_connections(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.blackhole()
    with connect(proxy) as sock:
        sock.sendall(b"late")
        wait_until(lambda: proxy.stats().accepted == 1, "the proxy accepting")
        assert echo.accepted == 0

        proxy.resume()
        assert sock.recv(4) == b"late"
    assert echo.accepted == 1


def test_connection_to_a_stopped_server_is_reset(echo: EchoServer) -> None:
    echo.close()
    with FaultProxy(f"127.0.0.1:{echo.port}") as proxy:
        # The reset may come before the client's connect returns or after it.
        try:
            with connect(proxy) as sock:
                received = sock.recv(1)
        except ConnectionResetError:
            received = b""
        assert received == b""


def test_target_off_loopback_is_rejected() -> None:
    with pytest.raises(ValueError, match="not on a loopback address"):
        FaultProxy("192.0.2.1:5432")


def test_unknown_command_is_rejected(proxy: FaultProxy) -> None:
    with pytest.raises(ProxyError, match="unknown command 'explode'"):
        proxy._command("explode")


def test_url_points_at_the_proxy(proxy: FaultProxy) -> None:
    url = proxy.url("pyamqp://guest:guest@127.0.0.1:5672/atlas_test")
    assert url == f"pyamqp://guest:guest@127.0.0.1:{proxy.port}/atlas_test"
    assert proxy.url("http://127.0.0.1:8000/x?y=1") == f"http://127.0.0.1:{proxy.port}/x?y=1"
