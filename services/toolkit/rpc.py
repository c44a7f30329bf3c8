"""RPC entrypoints and proxies that survive a lost broker.

nameko's ``@rpc`` raises a reply that cannot be sent, because the broker is
gone, in the worker's greenthread, and that kills the whole service
container. Atlas's ``rpc`` logs it instead, and sends replies without
publisher confirms.

nameko's own ``RpcProxy`` waits for a reply with no limit, so a call to a
service that is down hangs the caller. ``TimedRpcProxy`` gives each call
``ATLAS.rpc_timeout`` seconds, publishing included, and then raises
``ServiceUnavailable``; so does a call that cannot reach the broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from amqp.exceptions import NotFound as AmqpNotFound
from kombu.exceptions import OperationalError
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import UnknownService
from nameko.rpc import (
    MethodProxy,
    Responder,
    Rpc,
    RpcConsumer,
    RpcProxy,
    ServiceProxy,
    get_rpc_exchange,
)

from services.toolkit import config as cfg
from services.toolkit.errors import CALLER_ERRORS, ServiceUnavailable
from services.toolkit.metrics import observe_rpc_call

log = logging.getLogger(__name__)

# Errors of a lost or refused broker connection while publishing a call.
# kombu raises its OperationalError once its retries are spent; a reset
# connection may surface as the socket's own error or as py-amqp's.
BROKER_ERRORS = (OperationalError, AmqpConnectionError, OSError)

# kombu retries a publish whose connection failed. nameko's policy allows
# three retries one second apart, on top of the reply timeout. One quick
# retry replaces a stale pooled connection and fails soon when the broker
# is down.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 1}


def call_options(timeout: float, options: dict[str, Any]) -> dict[str, Any]:
    """Return publish options of a call that waits ``timeout`` seconds for its reply."""
    return {
        "retry_policy": PUBLISH_RETRY_POLICY,
        # A request still queued when its caller stops waiting is dropped by
        # the broker, so that a service that was down does not carry out a
        # change after its caller got an error.
        "expiration": timeout,
        **options,
    }


class ReplyPublisher(Publisher):
    """Publishes replies without waiting for the broker to confirm each one.

    A confirm costs a round trip to the broker on every call. It would only
    tell the service that a reply was lost, and the caller learns that
    anyway: its wait times out and it may call again.
    """

    use_confirms = False


class ReplyResponder(Responder):
    publisher_cls = ReplyPublisher


class ReplyTolerantRpcConsumer(RpcConsumer):
    def handle_result(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        config = self.container.config
        responder = ReplyResponder(
            config[AMQP_URI_CONFIG_KEY],
            get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        try:
            result, exc_info = responder.send_response(result, exc_info)
            self.queue_consumer.ack_message(message)
            return result, exc_info
        except BROKER_ERRORS as exc:
            # The request stays unacknowledged, so the broker takes it back
            # with the lost connection; its expiration then drops it.
            log.warning(
                "sending the reply to %s failed because the broker is unavailable: %s",
                message.properties.get("reply_to"),
                exc,
            )
            return result, exc_info


class ReplyTolerantRpc(Rpc):
    """nameko's ``@rpc`` entrypoint, except that a failed reply leaves the service running.

    A caller's mistake (a 4xx error) is an expected exception, which nameko
    logs at warning rather than as an error with its traceback.
    """

    rpc_consumer = ReplyTolerantRpcConsumer()

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("expected_exceptions", CALLER_ERRORS)
        super().__init__(**kwargs)


rpc = ReplyTolerantRpc.decorator


class TimedMethodProxy(MethodProxy):
    def __init__(self, *args: Any, timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = self._wait(*args, **kwargs)
            outcome = "ok"
            return result
        except ServiceUnavailable as exc:
            outcome = "timeout" if isinstance(exc.__cause__, eventlet.Timeout) else "unavailable"
            raise
        finally:
            observe_rpc_call(
                self.worker_ctx.service_name,
                self.service_name,
                self.method_name,
                outcome,
                time.perf_counter() - started,
            )

    def _wait(self, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            reply = self._call(*args, **kwargs)
        except UnknownService as exc:
            raise ServiceUnavailable(f"service {self.service_name} is not running") from exc
        except AmqpNotFound as exc:
            # The RPC exchange is missing. On a new vhost, a service's eager
            # timer can call before its own reply listener has declared it.
            # NOTE: an exchange deleted under running services also takes
            # their reply queues' bindings, and their calls then time out
            # until they restart.
            raise ServiceUnavailable(f"service {self.service_name} is not running") from exc
        except BROKER_ERRORS as exc:
            raise ServiceUnavailable(
                f"calling {self.service_name}.{self.method_name} failed because the message "
                "broker is unavailable; try again shortly"
            ) from exc
        remaining = self.timeout - (time.monotonic() - started)
        try:
            with eventlet.Timeout(max(remaining, 0.0)):
                return reply.result()
        except eventlet.Timeout as exc:
            raise ServiceUnavailable(
                f"service {self.service_name} did not answer {self.method_name} "
                f"within {self.timeout:g} seconds"
            ) from exc


class TimedServiceProxy(ServiceProxy):
    def __init__(self, *args: Any, timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout

    def __getattr__(self, name: str) -> TimedMethodProxy:
        return TimedMethodProxy(
            self.worker_ctx,
            self.service_name,
            name,
            self.reply_listener,
            timeout=self.timeout,
            **call_options(self.timeout, self.options),
        )


class TimedRpcProxy(RpcProxy):
    """Dependency that calls ``target_service`` with a bounded wait for each reply."""

    def get_dependency(self, worker_ctx: Any) -> TimedServiceProxy:
        timeout = float(cfg.setting(self.container.config, cfg.RPC_TIMEOUT))
        return TimedServiceProxy(
            worker_ctx,
            self.target_service,
            self.rpc_reply_listener,
            timeout=timeout,
            **self.options,
        )


class TimedClusterProxy:
    """Calls to any service by name, each with a bounded wait for its reply."""

    def __init__(self, worker_ctx: Any, reply_listener: Any, timeout: float, **options: Any):
        self.worker_ctx = worker_ctx
        self.reply_listener = reply_listener
        self.timeout = timeout
        self.options = options

    def service(self, name: str, timeout: float | None = None) -> TimedServiceProxy:
        return TimedServiceProxy(
            self.worker_ctx,
            name,
            self.reply_listener,
            timeout=self.timeout if timeout is None else timeout,
            **self.options,
        )

    def call_each(
        self, services: Iterable[str], method: str, timeout: float | None = None
    ) -> dict[str, Any]:
        """Call ``method`` on every service at once; return each result or the exception raised."""
        names = list(services)
        pool = eventlet.GreenPool(max(1, len(names)))

        def call(name: str) -> Any:
            try:
                return getattr(self.service(name, timeout), method)()
            except Exception as exc:  # the caller decides what each failure means
                return exc

        return dict(zip(names, pool.imap(call, names), strict=True))


class TimedClusterRpcProxy(RpcProxy):
    """Dependency that calls services named at call time, with ``ATLAS.rpc_timeout``."""

    def __init__(self, **options: Any) -> None:
        super().__init__("", **options)

    def get_dependency(self, worker_ctx: Any) -> TimedClusterProxy:
        timeout = float(cfg.setting(self.container.config, cfg.RPC_TIMEOUT))
        return TimedClusterProxy(worker_ctx, self.rpc_reply_listener, timeout, **self.options)
