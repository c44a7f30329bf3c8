"""RPC entrypoints and proxies that survive a lost broker.

nameko's ``@rpc`` raises a reply that cannot be sent, because the broker is
gone, in the worker's greenthread, and that kills the whole service
container. Atlas's ``rpc`` logs it instead.

nameko's own ``RpcProxy`` waits for a reply with no limit, so a call to a
service that is down hangs the caller. ``TimedRpcProxy`` gives each call
``ATLAS.rpc_timeout`` seconds, publishing included, and then raises
``ServiceUnavailable``; so does a call that cannot reach the broker.

Calls, their replies and the replies ``rpc`` sends all travel on the
container's ``RpcLink`` (``services.toolkit.rpclink``).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterable
from typing import Any

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.exceptions import IncorrectSignature
from nameko.extensions import DependencyProvider
from nameko.messaging import HeaderEncoder
from nameko.rpc import Rpc, RpcConsumer

from services.toolkit import config as cfg
from services.toolkit.errors import CALLER_ERRORS, ServiceUnavailable
from services.toolkit.metrics import observe_rpc_call
from services.toolkit.rpclink import RpcLink

log = logging.getLogger(__name__)

# Errors of a lost or refused broker connection. kombu raises its
# OperationalError once its retries are spent; a reset connection may
# surface as the socket's own error or as py-amqp's.
BROKER_ERRORS = (OperationalError, AmqpConnectionError, OSError)


class ReplyTolerantRpcConsumer(RpcConsumer):
    link = RpcLink()

    def handle_result(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        try:
            result, exc_info = self.link.reply(message, result, exc_info)
        except BROKER_ERRORS as exc:
            # The caller's wait times out either way. The request is still
            # acknowledged, because the link is not the consumer's connection,
            # which may stay up and would hold the request forever.
            log.warning(
                "sending the reply to %s failed because the broker is unavailable: %s",
                message.properties.get("reply_to"),
                exc,
            )
        try:
            self.queue_consumer.ack_message(message)
        except BROKER_ERRORS as exc:
            # The consumer's connection is gone, and the broker requeues the request with it.
            log.warning("acknowledging an RPC request failed: %s", exc)
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

    def setup(self) -> None:
        super().setup()
        self.signature = inspect.signature(getattr(self.container.service_cls, self.method_name))

    def check_signature(self, args: Any, kwargs: Any) -> None:
        # nameko's own check inspects the method anew on every call.
        try:
            self.signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise IncorrectSignature(str(exc)) from exc


rpc = ReplyTolerantRpc.decorator

_headers = HeaderEncoder()


class TimedMethodProxy:
    def __init__(
        self, worker_ctx: Any, service_name: str, method_name: str, link: RpcLink, timeout: float
    ) -> None:
        self.worker_ctx = worker_ctx
        self.service_name = service_name
        self.method_name = method_name
        self.link = link
        self.timeout = timeout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = self.link.call(
                self.service_name,
                self.method_name,
                args,
                kwargs,
                _headers.get_message_headers(self.worker_ctx),
                self.timeout,
            )
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

    def __repr__(self) -> str:
        return f"<proxy method: {self.service_name}.{self.method_name}>"


class TimedServiceProxy:
    def __init__(self, worker_ctx: Any, service_name: str, link: RpcLink, timeout: float) -> None:
        self.worker_ctx = worker_ctx
        self.service_name = service_name
        self.link = link
        self.timeout = timeout

    def __getattr__(self, name: str) -> TimedMethodProxy:
        return TimedMethodProxy(self.worker_ctx, self.service_name, name, self.link, self.timeout)


class TimedRpcProxy(DependencyProvider):
    """Dependency that calls ``target_service`` with a bounded wait for each reply."""

    link = RpcLink()

    def __init__(self, target_service: str) -> None:
        self.target_service = target_service

    def get_dependency(self, worker_ctx: Any) -> TimedServiceProxy:
        timeout = float(cfg.setting(self.container.config, cfg.RPC_TIMEOUT))
        return TimedServiceProxy(worker_ctx, self.target_service, self.link, timeout)


class TimedClusterProxy:
    """Calls to any service by name, each with a bounded wait for its reply."""

    def __init__(self, worker_ctx: Any, link: RpcLink, timeout: float):
        self.worker_ctx = worker_ctx
        self.link = link
        self.timeout = timeout

    def service(self, name: str, timeout: float | None = None) -> TimedServiceProxy:
        return TimedServiceProxy(
            self.worker_ctx, name, self.link, self.timeout if timeout is None else timeout
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


class TimedClusterRpcProxy(DependencyProvider):
    """Dependency that calls services named at call time, with ``ATLAS.rpc_timeout``."""

    link = RpcLink()

    def get_dependency(self, worker_ctx: Any) -> TimedClusterProxy:
        timeout = float(cfg.setting(self.container.config, cfg.RPC_TIMEOUT))
        return TimedClusterProxy(worker_ctx, self.link, timeout)
