"""Fixtures shared by every test: a database, a vhost and the services, all real.

Each test run gets its own PostgreSQL database and RabbitMQ vhost, named
``atlas_test_<random>``, so that runs on one machine never see each other's
data. Both are removed when the run ends.
"""

import eventlet  # noqa: E402

import services.toolkit  # noqa: F401 - silences eventlet's import-time warning

eventlet.monkey_patch()

import contextlib  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import socket  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote, urlparse  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from services.cli.database import migrate  # noqa: E402
from services.toolkit import config as cfg  # noqa: E402

POSTGRES_URL = os.environ.get(
    "ATLAS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("ATLAS_TEST_AMQP_URL", "pyamqp://guest:guest@127.0.0.1:5672/")
RABBIT_API_URL = os.environ.get("ATLAS_TEST_RABBIT_API_URL", "http://guest:guest@127.0.0.1:15672")

RUN_ID = uuid.uuid4().hex[:10]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _admin_engine():
    return create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def create_test_database(name: str) -> str:
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    migrate(url)
    return url


def drop_test_database(name: str) -> None:
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _rabbit_api(method: str, path: str, **kwargs: Any) -> requests.Response:
    parsed = urlparse(RABBIT_API_URL)
    base = f"{parsed.scheme}://{parsed.hostname}:{parsed.port}"
    response = requests.request(
        method, base + path, auth=(parsed.username, parsed.password), timeout=10, **kwargs
    )
    response.raise_for_status()
    return response


def create_test_vhost(name: str) -> str:
    user = urlparse(AMQP_URL).username
    _rabbit_api("PUT", f"/api/vhosts/{quote(name)}")
    _rabbit_api(
        "PUT",
        f"/api/permissions/{quote(name)}/{quote(user)}",
        json={"configure": ".*", "write": ".*", "read": ".*"},
    )
    return AMQP_URL.rstrip("/") + "/" + quote(name, safe="")


def delete_test_vhost(name: str) -> None:
    with contextlib.suppress(requests.RequestException):
        _rabbit_api("DELETE", f"/api/vhosts/{quote(name)}")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"atlas_test_{RUN_ID}"
    url = create_test_database(name)
    yield url
    drop_test_database(name)


@pytest.fixture(scope="session")
def amqp_uri() -> Iterator[str]:
    name = f"atlas_test_{RUN_ID}"
    uri = create_test_vhost(name)
    yield uri
    delete_test_vhost(name)


@pytest.fixture(scope="session")
def storage_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("blobs")


@pytest.fixture(scope="session")
def base_config(database_url: str, amqp_uri: str, storage_root: Path) -> dict[str, Any]:
    gateway_port, binstore_port = free_port(), free_port()
    return {
        "AMQP_URI": amqp_uri,
        "DB_URIS": {cfg.DATA_DB_KEY: database_url},
        "serializer": "json",
        "max_workers": 16,
        cfg.ATLAS: {
            cfg.PUBLIC_URL: f"http://127.0.0.1:{gateway_port}",
            cfg.BINSTORE_URL: f"http://127.0.0.1:{binstore_port}",
            cfg.GATEWAY_ADDRESS: f"127.0.0.1:{gateway_port}",
            cfg.BINSTORE_ADDRESS: f"127.0.0.1:{binstore_port}",
            cfg.STORAGE_ROOT: str(storage_root),
            cfg.SECRET_KEY: secrets.token_urlsafe(32),
            cfg.RPC_TIMEOUT: 5,
            # Long enough that only event invalidation can explain a fresh read.
            cfg.METADATA_CACHE_TTL: 600,
            # Quick retries and scans keep the job tests short.
            cfg.JOB_BACKOFF_BASE: 0.2,
            cfg.JOB_BACKOFF_MAX: 1.0,
            cfg.JOB_SCAN_INTERVAL: 0.2,
            cfg.JOB_LEASE: 6.0,
        },
    }


def service_config(base: dict[str, Any], address_key: str | None = None) -> dict[str, Any]:
    config = {**base, cfg.ATLAS: dict(base[cfg.ATLAS])}
    if address_key is not None:
        config[cfg.WEB_SERVER_ADDRESS] = base[cfg.ATLAS][address_key]
    return config


class Suite:
    """The data, binstore, gateway, jobs and workers services running in this process."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.api_url = config[cfg.ATLAS][cfg.PUBLIC_URL]
        self.binstore_url = config[cfg.ATLAS][cfg.BINSTORE_URL]
        self.containers: list[Any] = []

    def start(self) -> None:
        from nameko.containers import ServiceContainer

        from gateway.service import GatewayService
        from services.binstore.service import BinstoreService
        from services.data.service import DataService
        from services.jobs.service import JobsService
        from services.workers.service import WorkersService

        for service_cls, address_key in (
            (DataService, None),
            (BinstoreService, cfg.BINSTORE_ADDRESS),
            (GatewayService, cfg.GATEWAY_ADDRESS),
            (JobsService, None),
            (WorkersService, None),
        ):
            container = ServiceContainer(service_cls, service_config(self.config, address_key))
            container.start()
            self.containers.append(container)

    def stop(self) -> None:
        for container in reversed(self.containers):
            container.stop()
        self.containers.clear()

    def rpc(self) -> Any:
        from nameko.standalone.rpc import ClusterRpcProxy

        return ClusterRpcProxy(self.config, timeout=10)


@pytest.fixture(scope="session")
def suite(base_config: dict[str, Any]) -> Iterator[Suite]:
    running = Suite(base_config)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def data_rpc(suite: Suite) -> Iterator[Any]:
    proxy = suite.rpc()
    yield proxy.start().data
    proxy.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Client:
    """A user of the public API with their own token."""

    def __init__(self, api_url: str, username: str, token: str | None) -> None:
        self.api_url = api_url
        self.username = username
        self.token = token
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.api_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def make_user(data_rpc: Any, suite: Suite) -> Any:
    def make(password: str | None = None) -> Client:
        username = unique("user")
        data_rpc.create_user(username, password, None)
        token = data_rpc.issue_token(username, "test")["token"]
        return Client(suite.api_url, username, token)

    return make


@pytest.fixture
def user(make_user: Any) -> Client:
    return make_user()


@pytest.fixture
def anonymous(suite: Suite) -> Client:
    return Client(suite.api_url, "", None)
