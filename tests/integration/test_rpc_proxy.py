"""Calls through TimedRpcProxy when the broker has no RPC exchange."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import kombu
import pytest
from nameko.containers import ServiceContainer
from nameko.rpc import get_rpc_exchange
from nameko.testing.services import dummy, entrypoint_hook

from services.toolkit.errors import ServiceUnavailable
from services.toolkit.rpc import TimedRpcProxy
from tests.conftest import create_test_vhost, delete_test_vhost


class Caller:
    name = "caller"

    data = TimedRpcProxy("data")

    @dummy
    def ping_data(self) -> Any:
        return self.data.ping()


@pytest.fixture
def amqp_uri() -> Iterator[str]:
    name = f"atlas_test_rpc_{uuid.uuid4().hex[:10]}"
    yield create_test_vhost(name)
    delete_test_vhost(name)


def test_call_without_rpc_exchange_is_unavailable(amqp_uri: str) -> None:
    container = ServiceContainer(Caller, {"AMQP_URI": amqp_uri, "serializer": "json"})
    container.start()
    try:
        # On a new vhost the exchange is missing like this until a service's
        # reply listener or RPC consumer has declared it.
        with kombu.Connection(amqp_uri) as connection:
            get_rpc_exchange(container.config)(connection.default_channel).delete()

        with entrypoint_hook(container, "ping_data") as ping_data:
            with pytest.raises(ServiceUnavailable, match="service data is not running"):
                ping_data()
            # A second call gets the same error, not one about the channel the broker closed.
            with pytest.raises(ServiceUnavailable, match="service data is not running"):
                ping_data()
    finally:
        container.stop()
