"""The gateway's metadata cache after its broker connection was lost.

Events published while the connection is down never reach the gateway, so
the cache must not keep serving what those events would have removed.
Each test runs on a vhost of its own, whose connections it may close.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from nameko.containers import ServiceContainer
from nameko.standalone.events import event_dispatcher

from gateway.cache import MetadataCache, MetadataStore, invalidated_by
from services.toolkit import config as cfg
from tests.conftest import create_test_vhost, delete_test_vhost, unique
from tests.faults.test_job_faults import close_broker_connections
from tests.operations import wait_for


class CacheHolder:
    name = "test_metadata_cache_holder"

    metadata_cache = MetadataCache()

    @invalidated_by("box.updated")
    def forget(self, payload: dict[str, Any]) -> None:
        self.metadata_cache.invalidate(payload["username"])


@pytest.fixture
def own_vhost() -> Iterator[tuple[str, str]]:
    name = unique("atlas_test_cache")
    yield name, create_test_vhost(name)
    delete_test_vhost(name)


@pytest.fixture
def holder(own_vhost: tuple[str, str]) -> Iterator[tuple[ServiceContainer, MetadataStore]]:
    _, amqp_uri = own_vhost
    # Entries outlive the test, so only an invalidation can remove one.
    config = {"AMQP_URI": amqp_uri, cfg.ATLAS: {cfg.METADATA_CACHE_TTL: 3600}}
    container = ServiceContainer(CacheHolder, config)
    container.start()
    (cache,) = [d for d in container.dependencies if isinstance(d, MetadataCache)]
    yield container, cache.store
    container.stop()


def test_event_invalidates_entry(holder: tuple[ServiceContainer, MetadataStore]) -> None:
    container, store = holder
    store.put("alice", "base", b"{}", store.generation)
    store.put("bob", "base", b"{}", store.generation)

    dispatch = event_dispatcher(container.config)
    dispatch("data", "box.updated", {"username": "alice", "name": "base"})

    assert wait_for(lambda: store.get("alice", "base") is None, timeout=10)
    assert store.get("bob", "base") == b"{}"


def test_lost_connection_empties_cache(
    own_vhost: tuple[str, str], holder: tuple[ServiceContainer, MetadataStore]
) -> None:
    vhost, _ = own_vhost
    container, store = holder
    store.put("alice", "base", b"{}", store.generation)
    reading_generation = store.generation

    # The management API lists a connection only after its next statistics round.
    assert wait_for(lambda: close_broker_connections(vhost), timeout=60, step=1.0)

    assert wait_for(lambda: store.get("alice", "base") is None, timeout=30)
    # A read that began before the reconnection cannot store what it read.
    store.put("alice", "base", b"{}", reading_generation)
    assert store.get("alice", "base") is None

    # The new connection receives events again.
    store.put("bob", "base", b"{}", store.generation)
    dispatch = event_dispatcher(container.config)
    assert wait_for(
        lambda: (
            dispatch("data", "box.updated", {"username": "bob"}) or store.get("bob", "base") is None
        ),
        timeout=30,
        step=0.5,
    )
