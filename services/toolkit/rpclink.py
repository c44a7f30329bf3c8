"""One AMQP connection per service for its RPC traffic: calls out, their replies, replies out.

nameko's RPC proxy publishes a call through a pooled connection and waits
for the broker to confirm it, which is how it learns that no service took
the call. Its reply listener acknowledges every reply, and its responder
checks out a pooled connection for every reply. Each of these costs a
round trip or a frame that RabbitMQ handles, on every call. ``RpcLink``
keeps one connection and one channel per service container instead:

- a call is published with ``mandatory`` and without a confirm. A call that
  no queue takes comes back as ``basic.return``, which fails it at once
  with "service ... is not running", as the confirm did;
- replies arrive on an exclusive queue consumed without acknowledgements.
  A reply that is lost fails its call when the call's time is up, as a
  lost call did before;
- the replies this service sends to the calls it serves go out on the same
  channel.

Calls and replies are transient messages: a call expires when its caller
stops waiting, so nothing is gained by writing it to disk.

A green thread reads the connection and dispatches replies and returned
calls. Writes take a semaphore, so that the frames of two messages never
interleave. When the connection fails, every call waiting on it fails with
``ServiceUnavailable`` at once, and the thread connects again. It declares
the RPC exchange each time, so an exchange deleted by an operator comes
back with the next connection. A call that times out binds the reply
queue again, in case another service declared the exchange anew first.
Only that thread reads the socket: a second reader could take the middle
of a frame.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import time
import uuid
from typing import Any

import amqp
import eventlet
import kombu
import kombu.serialization
from amqp import spec
from amqp.exceptions import NotFound as AmqpNotFound
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import UnserializableValueError, deserialize, serialize
from nameko.extensions import SharedExtension
from nameko.rpc import get_rpc_exchange

from services.toolkit.errors import ServiceUnavailable

log = logging.getLogger(__name__)

# Seconds between heartbeats the connection and the broker agree on.
HEARTBEAT = 30
# Seconds between checks whether a heartbeat is due, and heartbeats sent per
# HEARTBEAT seconds without other traffic.
HEARTBEAT_CHECK = 5.0
HEARTBEAT_RATE = 3
# Seconds between connection attempts while the broker cannot be reached.
RECONNECT_DELAY = 1.0
# Maximum seconds a call waits for the link to connect or reconnect.
CONNECT_WAIT = 2.0


def broker_unavailable(service: str, method: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"calling {service}.{method} failed because the message broker is unavailable; "
        "try again shortly"
    )


def not_running(service: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"service {service} is not running")


class Pending:
    """A call published on the link and waiting for its reply."""

    __slots__ = ("service", "method", "reply")

    def __init__(self, service: str, method: str) -> None:
        self.service = service
        self.method = method
        self.reply: Event = Event()

    def fail(self, exc: BaseException) -> None:
        if not self.reply.ready():
            self.reply.send_exception(exc)


class RpcLink(SharedExtension):
    """The container's connection for RPC calls and replies; see the module's description."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, Pending] = {}
        self._writing = Semaphore()
        self._connected = Event()
        self._channel: Any = None
        self._connection: kombu.Connection | None = None
        self._thread: Any = None
        self._stopping = False
        self.reply_to = ""
        self._reply_queue = ""

    def setup(self) -> None:
        config = self.container.config
        self.amqp_uri = config[AMQP_URI_CONFIG_KEY]
        self.ssl = config.get(AMQP_SSL_CONFIG_KEY)
        self.login_method = config.get(LOGIN_METHOD_CONFIG_KEY)
        self.serializer = config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER)
        self.exchange = get_rpc_exchange(config)
        self.accept = kombu.serialization.prepare_accept_content([self.serializer])

    def start(self) -> None:
        self._stopping = False
        self._thread = self.container.spawn_managed_thread(self._run)

    def stop(self) -> None:
        self._stopping = True
        self._fail_all(lambda call: ServiceUnavailable("the calling service is stopping"))
        if self._thread is not None:
            self._thread.kill()
            self._thread = None
        self._close()

    def kill(self) -> None:
        self.stop()

    # Calls

    def call(
        self,
        service: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        headers: dict[str, Any],
        timeout: float,
    ) -> Any:
        """Call ``service.method`` and return its result, waiting ``timeout`` seconds at most.

        Raises the error the method raised, or ``ServiceUnavailable`` when the
        service is not running, the broker cannot be reached or no reply
        comes in time.
        """
        deadline = time.monotonic() + timeout
        if not self._wait_connected(min(timeout, CONNECT_WAIT)):
            raise broker_unavailable(service, method)
        content_type, encoding, body = kombu.serialization.dumps(
            {"args": args, "kwargs": kwargs}, serializer=self.serializer
        )
        correlation_id = uuid.uuid4().hex
        message = amqp.Message(
            body,
            content_type=content_type,
            content_encoding=encoding,
            application_headers=headers,
            correlation_id=correlation_id,
            reply_to=self.reply_to,
            # A call still queued when its caller stops waiting is dropped by
            # the broker, so that a service that was down does not carry out
            # a change after its caller got an error.
            expiration=str(max(1, int(timeout * 1000))),
        )
        pending = Pending(service, method)
        self._pending[correlation_id] = pending
        try:
            self._publish(message, f"{service}.{method}", True, deadline - time.monotonic())
        except Exception as exc:
            self._pending.pop(correlation_id, None)
            raise broker_unavailable(service, method) from exc
        timer = eventlet.Timeout(max(deadline - time.monotonic(), 0.0))
        try:
            reply = pending.reply.wait()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            self._bind_replies()
            raise ServiceUnavailable(
                f"service {service} did not answer {method} within {timeout:g} seconds"
            ) from exc
        finally:
            timer.cancel()
            self._pending.pop(correlation_id, None)
        error = reply.get("error")
        if error:
            raise deserialize(error)
        return reply["result"]

    # Replies

    def reply(self, request: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        """Send the reply to ``request``, a message of nameko's RPC consumer.

        Returns ``result`` and ``exc_info`` as sent: a result that cannot be
        serialized is replaced by the error saying so. Raises when the
        broker cannot take the reply.
        """
        properties = request.properties
        error = serialize(exc_info[1]) if exc_info is not None else None
        # Encoded as the request was, which the caller can read.
        serializer = kombu.serialization.registry.type_to_name.get(
            properties.get("content_type"), self.serializer
        )
        try:
            encoded = kombu.serialization.dumps({"result": result, "error": error}, serializer)
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            encoded = kombu.serialization.dumps({"result": result, "error": error}, serializer)
        content_type, encoding, body = encoded
        message = amqp.Message(
            body,
            content_type=content_type,
            content_encoding=encoding,
            correlation_id=properties.get("correlation_id"),
        )
        if not self._wait_connected(CONNECT_WAIT):
            raise ConnectionError("not connected to the message broker")
        self._publish(message, properties["reply_to"], False, CONNECT_WAIT)
        return result, exc_info

    # The connection

    def _wait_connected(self, timeout: float) -> bool:
        """Return whether the link is connected, waiting up to ``timeout`` seconds for it."""
        return self._connected.ready() or bool(self._connected.wait(timeout))

    def _publish(
        self, message: amqp.Message, routing_key: str, mandatory: bool, timeout: float
    ) -> None:
        channel = self._channel
        if channel is None:
            raise ConnectionError("not connected to the message broker")
        if not self._writing.acquire(timeout=max(timeout, 0.0)):
            raise ConnectionError("timed out waiting to write to the message broker")
        try:
            # Not channel.basic_publish: py-amqp's first reads the socket for a
            # connection.blocked notice, and only the link's thread may read it.
            # Another reader can take the middle of a frame and then spin.
            channel.send_method(
                spec.Basic.Publish,
                "Bssbb",
                (0, self.exchange.name, routing_key, mandatory, False),
                message,
            )
        except BaseException:
            # A write cut short can leave part of a frame on the stream.
            self._drop(channel)
            raise
        finally:
            self._writing.release()

    def _bind_replies(self) -> None:
        """Bind the reply queue again, in case the RPC exchange was deleted and declared anew.

        Sent without waiting for the broker's response, which only the
        link's thread may read. If the exchange is missing, the broker
        closes the channel and the link reconnects, declaring it.
        """
        channel = self._channel
        if channel is None or not self._writing.acquire(timeout=CONNECT_WAIT):
            return
        try:
            channel.queue_bind(self._reply_queue, self.exchange.name, self.reply_to, nowait=True)
        except Exception as exc:
            log.warning("binding the RPC reply queue again failed: %s", exc)
            self._drop(channel)
        finally:
            self._writing.release()

    def _drop(self, channel: Any) -> None:
        """Shut the connection of ``channel`` down, which wakes the link's thread to reconnect."""
        try:
            channel.connection.transport.sock.shutdown(socket.SHUT_RDWR)
        except Exception as exc:  # closed already
            log.debug("shutting the RPC link's connection down failed: %s", exc)

    def _run(self) -> None:
        lost = False
        while not self._stopping:
            connection = kombu.Connection(
                self.amqp_uri,
                heartbeat=HEARTBEAT,
                ssl=self.ssl,
                login_method=self.login_method,
            )
            errors = (OSError, *connection.connection_errors, *connection.channel_errors)
            try:
                broker = self._open(connection)
                if lost:
                    log.info("RPC link connected to the message broker again")
                lost = False
                self._read(broker)
            except errors as exc:
                if self._stopping:
                    return
                if not lost:
                    log.warning("RPC link lost the message broker, reconnecting: %s", exc)
                lost = True
                self._lose(exc)
                eventlet.sleep(RECONNECT_DELAY)

    def _open(self, connection: kombu.Connection) -> amqp.Connection:
        """Connect, declare and consume the reply queue; return py-amqp's connection.

        The link reads and writes py-amqp's connection, not kombu's, which
        would open a new connection by itself when it finds the old one
        closed, behind the link's channel.
        """
        self._connection = connection
        connection.connect()
        broker: amqp.Connection = connection.connection
        channel = broker.channel()
        key = uuid.uuid4().hex
        queue = kombu.Queue(
            f"rpc.reply-{self.container.service_name}-{key}",
            exchange=self.exchange,
            routing_key=key,
            exclusive=True,
            auto_delete=True,
        )
        # Declares the exchange too, and binds the queue to it.
        queue(channel).declare()
        channel.basic_consume(queue.name, no_ack=True, callback=self._on_reply)
        channel.events["basic_return"].add(self._on_return)
        self.reply_to = key
        self._reply_queue = queue.name
        self._channel = channel
        self._connected.send(True)
        return broker

    def _read(self, broker: amqp.Connection) -> None:
        checked = time.monotonic()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                broker.drain_events(timeout=HEARTBEAT_CHECK)
            # Frames may arrive without a pause, so check on the clock.
            if time.monotonic() - checked >= HEARTBEAT_CHECK:
                with self._writing:
                    broker.heartbeat_tick(rate=HEARTBEAT_RATE)
                checked = time.monotonic()

    def _lose(self, exc: BaseException) -> None:
        self._channel = None
        if self._connected.ready():
            self._connected = Event()
        self._close()
        if isinstance(exc, AmqpNotFound):
            # The broker closed the channel because the RPC exchange is
            # missing. The next connection declares it again.
            # NOTE: deleting the exchange also deletes the bindings of the
            # services' own RPC queues, which nameko's consumer does not
            # restore, so calls to a running service time out until it restarts.
            self._fail_all(lambda call: not_running(call.service))
        else:
            self._fail_all(lambda call: broker_unavailable(call.service, call.method))

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception as exc:  # the connection is broken already
                log.debug("closing the RPC link's connection failed: %s", exc)

    def _fail_all(self, error: Any) -> None:
        pending, self._pending = self._pending, {}
        for call in pending.values():
            call.fail(error(call))

    def _on_reply(self, message: amqp.Message) -> None:
        properties = message.properties
        pending = self._pending.pop(properties.get("correlation_id"), None)
        if pending is None:
            log.debug("reply to an unknown or abandoned call %s", properties.get("correlation_id"))
            return
        try:
            body = kombu.serialization.loads(
                message.body,
                properties.get("content_type"),
                properties.get("content_encoding"),
                accept=self.accept,
            )
        except Exception as exc:
            log.warning(
                "reply %s of %s.%s is unreadable: %s",
                properties.get("correlation_id"),
                pending.service,
                pending.method,
                exc,
            )
            pending.fail(ServiceUnavailable(f"the reply of {pending.service} is unreadable: {exc}"))
            return
        pending.reply.send(body)

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        # No queue is bound for the call's routing key: no instance of the
        # service has ever run on this broker, or all are gone.
        pending = self._pending.pop(message.properties.get("correlation_id"), None)
        if pending is not None:
            pending.fail(not_running(pending.service))
