"""A loopback TCP proxy that injects network faults between a client and a server.

Tests put a ``FaultProxy`` between Atlas and PostgreSQL, RabbitMQ or any
other TCP server on this machine, point Atlas at ``proxy.address`` instead
of the server, and then break the path on purpose:

- ``cut()`` resets every open connection, as a server crash or restart does;
- ``refuse()`` rejects new connections with a TCP reset (ECONNREFUSED), as a
  server that is down does, and leaves open connections alone;
- ``blackhole()`` stops moving bytes on every connection, open and new, as a
  network partition does. New connections are accepted but get no reply,
  and data waits in the proxy and the kernel's buffers;
- ``resume()`` ends ``refuse()`` and ``blackhole()``; held data then flows on.

A server that goes down is ``proxy.cut(); proxy.refuse()``, or ``proxy.down()``.
``stats()`` counts open and accepted connections and connections that hold
data, so a test can wait for a client to reconnect or for a request to
reach the blackhole.

The proxy runs in a child process (``python -m tests.faults.proxy``), so it
works the same whether or not the test process is monkey-patched by
eventlet, and it goes away with its parent: it exits when its standard input
closes. The parent sends one command per line on the child's standard input
and reads one JSON reply per line from its standard output. Each command has
taken effect when its reply arrives.

Targets must be loopback addresses: these proxies exist to break servers
that the tests themselves use, on this machine only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 65536  # bytes read from a socket at a time
BACKLOG = 128
COMMAND_TIMEOUT = 10  # seconds the parent waits for each reply


class ProxyError(RuntimeError):
    """The proxy process failed or rejected a command; the message contains its reason."""


@dataclass(frozen=True)
class ProxyStats:
    """Connections of one proxy at the moment of the ``stats()`` call."""

    #: Connections from clients that are open now.
    open: int
    #: Connections accepted since the proxy started, including closed ones.
    accepted: int
    #: Open connections holding bytes that ``blackhole()`` keeps from their peer.
    holding: int


# --- the proxy process ---------------------------------------------------------------


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Connection:
    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.task: asyncio.Task[None] | None = None
        self.holding = 0  # directions that hold a chunk until the blackhole ends


class _Proxy:
    """The event loop side: accepts, forwards and breaks connections."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Bound to an explicit port without SO_REUSEADDR: the socket keeps its
        # port while refuse() has it out of the listening state, so nothing
        # else on the machine can take the port meanwhile.
        self.listener.bind(listen)
        self.listener.setblocking(False)
        self.listener.listen(BACKLOG)
        self.port = self.listener.getsockname()[1]
        self.connections: set[_Connection] = set()
        self.accepted = 0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.accept_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.accept_task = asyncio.get_running_loop().create_task(self._accept())

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(self.listener)
            client.setblocking(False)
            self.accepted += 1
            connection = _Connection(client)
            self.connections.add(connection)
            connection.task = loop.create_task(self._serve(connection))

    async def _serve(self, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        try:
            # A blackholed connection is accepted but reaches the server only
            # once the blackhole ends, like a SYN that a partition delays.
            await self.flowing.wait()
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            connection.upstream = upstream
            try:
                await loop.sock_connect(upstream, self.target)
            except OSError:
                # The server is down: the client sees its connection reset.
                return
            await asyncio.gather(
                self._pump(connection, connection.client, upstream),
                self._pump(connection, upstream, connection.client),
            )
        finally:
            self.connections.discard(connection)
            _reset(connection.client)
            if connection.upstream is not None:
                _reset(connection.upstream)

    async def _pump(
        self, connection: _Connection, source: socket.socket, sink: socket.socket
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.flowing.wait()
            try:
                data = await loop.sock_recv(source, CHUNK)
            except OSError:
                data = b""
            if not data:
                # An orderly close travels on as one, so that either side may
                # still read what the other sent before it.
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            if not self.flowing.is_set():
                connection.holding += 1
                await self.flowing.wait()
                connection.holding -= 1
            try:
                await loop.sock_sendall(sink, data)
            except OSError:
                return

    async def cut(self) -> None:
        tasks = [c.task for c in self.connections if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def refuse(self) -> None:
        if self.accept_task is None:
            return
        self.accept_task.cancel()
        await asyncio.gather(self.accept_task, return_exceptions=True)
        self.accept_task = None
        # On Linux, shutting down a listening socket takes it out of the
        # listening state, so connects get a reset, but keeps its port bound.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)

    async def blackhole(self) -> None:
        self.flowing.clear()

    async def resume(self) -> None:
        self.flowing.set()
        if self.accept_task is None:
            self.listener.listen(BACKLOG)
            self.start()

    async def stats(self) -> dict[str, int]:
        return {
            "open": len(self.connections),
            "accepted": self.accepted,
            "holding": sum(1 for c in self.connections if c.holding),
        }


COMMANDS = ("cut", "refuse", "blackhole", "resume", "stats")


async def _serve_commands(proxy: _Proxy) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _reply({"port": proxy.port})
    while line := await reader.readline():
        command = line.decode().strip()
        if command not in COMMANDS:
            _reply({"error": f"unknown command {command!r}; use one of {', '.join(COMMANDS)}"})
            continue
        result = await getattr(proxy, command)()
        _reply(result if isinstance(result, dict) else {"ok": True})


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _run(listen: tuple[str, int], target: tuple[str, int]) -> None:
    proxy = _Proxy(listen, target)
    proxy.start()
    try:
        await _serve_commands(proxy)
    finally:
        await proxy.refuse()
        await proxy.cut()


def _parse_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address {value!r} is not HOST:PORT, for example 127.0.0.1:5432")
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"address {value!r} is not on a loopback address such as 127.0.0.1")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Forward TCP from a loopback port to a loopback server and inject faults "
        "on command: one of cut, refuse, blackhole, resume, stats per line on standard input."
    )
    parser.add_argument("target", help="server to forward to, as HOST:PORT on a loopback address")
    parser.add_argument(
        "--listen",
        default="127.0.0.1:0",
        help="loopback HOST:PORT to listen on; port 0 picks a free one (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        listen, target = _parse_address(args.listen), _parse_address(args.target)
    except ValueError as exc:
        parser.error(str(exc))
    if listen[1] == 0:
        listen = (listen[0], _free_port(listen[0]))
    asyncio.run(_run(listen, target))
    return 0


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- the test side -------------------------------------------------------------------


class FaultProxy:
    """A proxy process forwarding ``127.0.0.1:<free port>`` to ``target`` (``HOST:PORT``).

    Use it as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(self, target: str) -> None:
        _parse_address(target)
        self.target = target
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``HOST:PORT`` that clients connect to instead of the target."""
        return f"127.0.0.1:{self.port}"

    def url(self, url: str) -> str:
        """Return ``url`` with its host and port replaced by the proxy's, credentials kept."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{self.address}" if credentials else self.address
        return urlunsplit(parts._replace(netloc=netloc))

    def start(self) -> FaultProxy:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.proxy", self.target],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.port = int(self._read_reply()["port"])
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        assert self._process.stdin is not None
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        try:
            self._process.wait(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def cut(self) -> None:
        """Reset every open connection; new ones are still forwarded."""
        self._command("cut")

    def refuse(self) -> None:
        """Reject new connections until ``resume()``; open ones stay as they are."""
        self._command("refuse")

    def blackhole(self) -> None:
        """Stop forwarding bytes and connecting new clients until ``resume()``."""
        self._command("blackhole")

    def down(self) -> None:
        """Act as a server that went down: reset open connections and reject new ones."""
        self.refuse()
        self.cut()

    def resume(self) -> None:
        """Accept and forward again; data held by ``blackhole()`` flows on."""
        self._command("resume")

    def stats(self) -> ProxyStats:
        return ProxyStats(**self._command("stats"))

    def _command(self, command: str) -> dict[str, Any]:
        if self._process is None:
            raise ProxyError(f"the proxy to {self.target} is not running; call start() first")
        assert self._process.stdin is not None
        with self._lock:
            self._process.stdin.write(command + "\n")
            self._process.stdin.flush()
            reply = self._read_reply()
        if "error" in reply:
            raise ProxyError(reply["error"])
        return reply

    def _read_reply(self) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        # NOTE: this read blocks the calling OS thread, and under eventlet
        # every green thread of the test process, until the reply arrives.
        # The proxy answers each command at once, so the pause is short.
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait(timeout=COMMAND_TIMEOUT)
            raise ProxyError(f"the proxy to {self.target} exited with code {code}")
        return dict(json.loads(line))


if __name__ == "__main__":
    sys.exit(main())
