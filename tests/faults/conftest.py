"""The whole suite started with ``atlas up`` behind fault proxies to PostgreSQL and RabbitMQ.

Each test may break the proxies or kill a service. After each test a
fixture resumes both proxies and waits until the suite is healthy again,
so the next test starts from a working suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from services.data.models import Account, Artifact, Box, Provider, Version
from tests.conftest import Client, unique
from tests.faults.proxy import FaultProxy
from tests.suite_process import RunningSuite, SuiteFailed, running_suite

POSTGRES = "127.0.0.1:5432"
RABBITMQ = "127.0.0.1:5672"
# Seconds a gateway RPC call waits for its reply in the faulty suite. Short,
# so that faults surface quickly, but long enough for a loaded 2-core machine.
RPC_TIMEOUT = 5
# Maximum seconds a request may take: every call it makes waits at most RPC_TIMEOUT,
# and a broker reconnection attempt adds a few seconds of its own.
REQUEST_TIMEOUT = 4 * RPC_TIMEOUT
RECOVERY_TIMEOUT = 60  # seconds the suite gets to recover after a fault ends


@dataclass
class FaultySuite:
    suite: RunningSuite
    postgres: FaultProxy
    rabbitmq: FaultProxy
    engine: Engine

    def client(self) -> Client:
        username = unique("user")
        return Client(self.suite.api_url, username, self.suite.create_user(username))

    def counts(self, username: str) -> dict[str, int]:
        """Count the boxes, versions, providers and hosted files of ``username``."""
        boxes = (
            select(Box.id)
            .join(Account, Box.account_id == Account.id)
            .where(Account.username == username)
        )
        versions = select(Version.id).where(Version.box_id.in_(boxes))
        providers = select(Provider).where(Provider.version_id.in_(versions))
        with self.engine.connect() as connection:
            return {
                "boxes": connection.scalar(select(func.count()).select_from(boxes.subquery())),
                "versions": connection.scalar(
                    select(func.count()).select_from(versions.subquery())
                ),
                "providers": connection.scalar(
                    select(func.count()).select_from(providers.subquery())
                ),
                "hosted": connection.scalar(
                    select(func.count()).select_from(
                        providers.where(Provider.artifact_sha256.is_not(None)).subquery()
                    )
                ),
            }

    def artifact_exists(self, sha256: str) -> bool:
        with self.engine.connect() as connection:
            found = connection.scalar(select(func.count()).where(Artifact.sha256 == sha256))
        return bool(found)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = RECOVERY_TIMEOUT) -> Any:
    """Return the first true value of ``condition()``, polled until ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} seconds")
        time.sleep(0.2)


def healthy(suite: RunningSuite) -> bool:
    try:
        return requests.get(suite.api_url + "/health", timeout=REQUEST_TIMEOUT).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def faulty_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultySuite]:
    with FaultProxy(POSTGRES) as postgres, FaultProxy(RABBITMQ) as rabbitmq:
        env = {
            "ATLAS_RPC_TIMEOUT": str(RPC_TIMEOUT),
            # One gateway process, so that one metadata cache serves every request.
            "ATLAS_GATEWAY_INSTANCES": "1",
            # Long enough that only an event can explain a fresh metadata read.
            "ATLAS_METADATA_CACHE_TTL": "600",
        }
        try:
            with running_suite(
                tmp_path_factory.mktemp("faulty-suite"),
                extra_env=env,
                database_via=postgres.address,
                amqp_via=rabbitmq.address,
            ) as suite:
                engine = create_engine(suite.database_url)
                yield FaultySuite(suite, postgres, rabbitmq, engine)
                engine.dispose()
        except SuiteFailed as exc:
            pytest.fail(str(exc))


@pytest.fixture
def faults(faulty_suite: FaultySuite) -> Iterator[FaultySuite]:
    yield faulty_suite
    faulty_suite.postgres.resume()
    faulty_suite.rabbitmq.resume()
    wait_until(lambda: healthy(faulty_suite.suite), "the suite passing its health check")


def assert_unavailable(response: requests.Response) -> None:
    """Assert a 503 in the API's error format, with a Retry-After header."""
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["success"] is False
    assert body["errors"], body
