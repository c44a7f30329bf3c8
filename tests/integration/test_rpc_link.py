"""Calls between two service containers over RpcLink, with the caller's broker path breakable."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import eventlet
import pytest
from nameko.containers import ServiceContainer
from nameko.exceptions import IncorrectSignature
from nameko.testing.services import dummy, entrypoint_hook

from services.toolkit import config as cfg
from services.toolkit.errors import InvalidInput, ServiceUnavailable
from services.toolkit.rpc import TimedRpcProxy, rpc
from services.toolkit.rpclink import RpcLink
from tests.conftest import create_test_vhost, delete_test_vhost
from tests.faults.conftest import RABBITMQ
from tests.faults.proxy import FaultProxy

# Seconds each call may wait for its reply: long, so that a call that fails
# before it shows that the link noticed the failure, not that time ran out.
CALL_TIMEOUT = 60


class Echo:
    name = "echo"

    @rpc
    def echo(self, value: Any) -> Any:
        return value

    @rpc
    def reject(self, reason: str) -> None:
        raise InvalidInput(reason)

    @rpc
    def unserializable(self) -> Any:
        return {"when": object()}

    @rpc
    def large(self, size: int) -> str:
        return "x" * size

    @rpc
    def sleep(self, seconds: float) -> str:
        eventlet.sleep(seconds)
        return "awake"


class Caller:
    name = "caller"

    echo = TimedRpcProxy("echo")
    nobody = TimedRpcProxy("nobody")

    @dummy
    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.echo, method)(*args)

    @dummy
    def call_many(self, calls: list[tuple[str, int]], at_once: int) -> list[Any]:
        pool = eventlet.GreenPool(at_once)
        return list(pool.imap(lambda call: getattr(self.echo, call[0])(call[1]), calls))

    @dummy
    def call_nobody(self) -> Any:
        return self.nobody.anything()


@pytest.fixture
def amqp_uri() -> Iterator[str]:
    name = f"atlas_test_link_{uuid.uuid4().hex[:10]}"
    yield create_test_vhost(name)
    delete_test_vhost(name)


@pytest.fixture
def broker() -> Iterator[FaultProxy]:
    with FaultProxy(RABBITMQ) as proxy:
        yield proxy


def config(amqp_uri: str) -> dict[str, Any]:
    return {
        "AMQP_URI": amqp_uri,
        "serializer": "json",
        cfg.ATLAS: {cfg.RPC_TIMEOUT: CALL_TIMEOUT},
    }


@pytest.fixture
def containers(amqp_uri: str, broker: FaultProxy) -> Iterator[tuple[Any, Any]]:
    """Start Echo, and a Caller whose broker connection runs through ``broker``."""
    echo = ServiceContainer(Echo, config(amqp_uri))
    caller = ServiceContainer(Caller, {**config(broker.url(amqp_uri)), "max_workers": 60})
    echo.start()
    caller.start()
    try:
        yield echo, caller
    finally:
        caller.stop()
        echo.stop()


@pytest.fixture
def call(containers: tuple[Any, Any]) -> Callable[..., Any]:
    """Call an Echo method from the Caller."""

    def call(method: str, *args: Any) -> Any:
        with entrypoint_hook(containers[1], "call") as hook:
            return hook(method, *args)

    return call


def test_call_returns_result(call: Callable[..., Any]) -> None:
    assert call("echo", {"a": [1, "two", None]}) == {"a": [1, "two", None]}


def test_call_raises_remote_error(call: Callable[..., Any]) -> None:
    with pytest.raises(InvalidInput, match="name is too long"):
        call("reject", "name is too long")


def test_unserializable_result_raises_error(call: Callable[..., Any]) -> None:
    with pytest.raises(Exception, match="UnserializableValueError"):
        call("unserializable")
    assert call("echo", 1) == 1


def test_call_to_stopped_service_fails_at_once(amqp_uri: str) -> None:
    caller = ServiceContainer(Caller, config(amqp_uri))
    caller.start()
    try:
        # The broker returns the call, which no queue takes; the caller does
        # not wait out its 60 seconds.
        with (
            entrypoint_hook(caller, "call_nobody") as call_nobody,
            pytest.raises(ServiceUnavailable, match="service nobody is not running"),
        ):
            call_nobody()
    finally:
        caller.stop()


def test_lost_broker_fails_call_then_reconnects(
    call: Callable[..., Any], broker: FaultProxy
) -> None:
    assert call("echo", "before") == "before"
    waiting = eventlet.spawn(call, "sleep", 1.0)
    eventlet.sleep(0.3)  # the call is out, and Echo is sleeping on it
    broker.down()
    with pytest.raises(ServiceUnavailable, match="message broker is unavailable"):
        waiting.wait()
    with pytest.raises(ServiceUnavailable, match="message broker is unavailable"):
        call("echo", "during")

    broker.resume()
    for _ in range(100):
        try:
            assert call("echo", "after") == "after"
            return
        except ServiceUnavailable:
            eventlet.sleep(0.2)
    pytest.fail("the caller never called Echo again after the broker came back")


def test_call_with_wrong_arguments_fails(call: Callable[..., Any]) -> None:
    with pytest.raises(IncorrectSignature, match="missing a required argument: 'reason'"):
        call("reject")
    with pytest.raises(IncorrectSignature, match="too many positional arguments"):
        call("echo", 1, 2)


def test_many_calls_with_large_replies_all_return(containers: tuple[Any, Any]) -> None:
    # Replies of 3 MB arrive in many frames while other calls are published.
    # A publish that read the socket could take the middle of such a frame;
    # with py-amqp's basic_publish, this failed in about half of the runs.
    calls = [("large", 3_000_000) if index % 3 == 0 else ("echo", index) for index in range(1200)]

    with entrypoint_hook(containers[1], "call_many", timeout=CALL_TIMEOUT) as call_many:
        results = call_many(calls, 60)

    expected = ["x" * value if name == "large" else value for name, value in calls]
    assert results == expected


def test_failed_reply_still_acknowledges_request(
    containers: tuple[Any, Any], call: Callable[..., Any], amqp_uri: str
) -> None:
    echo = containers[0]
    link = echo.shared_extensions[RpcLink]
    publish = link._publish
    failing = {"left": echo.max_workers + 2}

    def publish_or_fail(*args: Any) -> None:
        if failing["left"] > 0:
            failing["left"] -= 1
            raise ConnectionError("injected: the link cannot write")
        publish(*args)

    link._publish = publish_or_fail
    impatient = ServiceContainer(Caller, {**config(amqp_uri), cfg.ATLAS: {cfg.RPC_TIMEOUT: 1}})
    impatient.start()
    try:
        # More requests than Echo takes at once, each reply lost.
        for _ in range(echo.max_workers + 2):
            with (
                entrypoint_hook(impatient, "call") as hook,
                pytest.raises(ServiceUnavailable, match="did not answer echo within 1 seconds"),
            ):
                hook("echo", 1)
    finally:
        impatient.stop()

    # Each of them was acknowledged, so none keeps one of Echo's places busy.
    assert call("echo", "after") == "after"
