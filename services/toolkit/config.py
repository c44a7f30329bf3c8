"""Configuration keys, their defaults and the loader for ``config.yaml``.

Every service reads its settings through the constants here, so a key is
spelled in one place. ``config.yaml`` may use ``${VAR:default}`` to take a
value from the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

AMQP_URI = "AMQP_URI"
DB_URIS = "DB_URIS"
WEB_SERVER_ADDRESS = "WEB_SERVER_ADDRESS"

# Key of the data service's database in DB_URIS, as nameko-sqlalchemy expects it.
DATA_DB_KEY = "data:Base"

# Settings of Atlas itself live under this key.
ATLAS = "ATLAS"

PUBLIC_URL = "public_url"
BINSTORE_URL = "binstore_url"
STORAGE_ROOT = "storage_root"
SECRET_KEY = "secret_key"
RPC_TIMEOUT = "rpc_timeout"
UPLOAD_TARGET_TTL = "upload_target_ttl"
DOWNLOAD_URL_TTL = "download_url_ttl"
GATEWAY_ADDRESS = "gateway_address"
BINSTORE_ADDRESS = "binstore_address"
METADATA_CACHE_TTL = "metadata_cache_ttl"
GATEWAY_INSTANCES = "gateway_instances"
MAX_UPLOAD_SIZE = "max_upload_size"
GC_INTERVAL = "gc_interval"
GC_GRACE_PERIOD = "gc_grace_period"
CONSUL_URL = "consul_url"
CONSUL_TOKEN = "consul_token"
CONSUL_DATACENTER = "consul_datacenter"
CHECK_INTERVAL = "check_interval"
DEREGISTER_CRITICAL_AFTER = "deregister_critical_after"
ADVERTISE_HOST = "advertise_host"
DISCOVERY_CACHE_TTL = "discovery_cache_ttl"
HEALTH_TIMEOUT = "health_timeout"
OPERATIONS_ADDRESS = "operations_address"
SESSION_TTL = "session_ttl"
LOGIN_FAILURE_WINDOW = "login_failure_window"
LOGIN_MAX_FAILURES_PER_ACCOUNT = "login_max_failures_per_account"
LOGIN_MAX_FAILURES_PER_ADDRESS = "login_max_failures_per_address"
SHUTDOWN_GRACE_PERIOD = "shutdown_grace_period"
JOB_LEASE = "job_lease"
JOB_BACKOFF_BASE = "job_backoff_base"
JOB_BACKOFF_MAX = "job_backoff_max"
JOB_MAX_ATTEMPTS = "job_max_attempts"
JOB_SCAN_INTERVAL = "job_scan_interval"
JOB_POOL_SIZE = "job_pool_size"
JOB_POOLS = "job_pools"
OUTBOUND_ALLOWLIST = "outbound_allowlist"
WEBHOOK_TIMEOUT = "webhook_timeout"
IMPORT_TIMEOUT = "import_timeout"

DEFAULTS: dict[str, Any] = {
    PUBLIC_URL: "http://127.0.0.1:8000",
    BINSTORE_URL: "http://127.0.0.1:8001",
    STORAGE_ROOT: "var/blobs",
    SECRET_KEY: "",
    RPC_TIMEOUT: 10.0,  # seconds
    UPLOAD_TARGET_TTL: 3600,  # seconds
    DOWNLOAD_URL_TTL: 300,  # seconds
    GATEWAY_ADDRESS: "127.0.0.1:8000",
    BINSTORE_ADDRESS: "127.0.0.1:8001",
    METADATA_CACHE_TTL: 10.0,  # seconds
    GATEWAY_INSTANCES: 2,
    MAX_UPLOAD_SIZE: 64 * 1024**3,  # bytes
    GC_INTERVAL: 3600,  # seconds; 0 turns periodic garbage collection off
    GC_GRACE_PERIOD: 86400,  # seconds
    CONSUL_URL: "",  # empty: run without Consul
    CONSUL_TOKEN: "",
    CONSUL_DATACENTER: "",  # empty: the agent's own datacenter
    CHECK_INTERVAL: 10.0,  # seconds
    DEREGISTER_CRITICAL_AFTER: 300.0,  # seconds; Consul raises less than 60 to 60
    ADVERTISE_HOST: "",  # empty: the listening host, or this machine's name for 0.0.0.0
    DISCOVERY_CACHE_TTL: 5.0,  # seconds
    HEALTH_TIMEOUT: 3.0,  # seconds
    OPERATIONS_ADDRESS: "",  # empty: no listener for /metrics and /health/instance
    SESSION_TTL: 14 * 24 * 3600,  # seconds
    LOGIN_FAILURE_WINDOW: 900,  # seconds over which failed sign-ins are counted
    LOGIN_MAX_FAILURES_PER_ACCOUNT: 10,  # failed sign-ins to one login name per window
    LOGIN_MAX_FAILURES_PER_ADDRESS: 30,  # failed sign-ins from one client address per window
    SHUTDOWN_GRACE_PERIOD: 25.0,  # seconds in-flight work may take after SIGTERM
    JOB_LEASE: 60.0,  # seconds a running job lives without a heartbeat
    JOB_BACKOFF_BASE: 2.0,  # seconds before the first retry, doubled for each later one
    JOB_BACKOFF_MAX: 300.0,  # seconds, the longest wait between attempts
    JOB_MAX_ATTEMPTS: 5,
    JOB_SCAN_INTERVAL: 1.0,  # seconds between the dispatcher's scans for due and lost jobs
    JOB_POOL_SIZE: 8,  # jobs of one kind a worker process runs at once
    JOB_POOLS: {},  # job kind -> pool size, for kinds that differ from job_pool_size
    # Networks (CIDR) and host names that webhooks and box imports may reach
    # although they are private, loopback or link-local.
    OUTBOUND_ALLOWLIST: [],
    WEBHOOK_TIMEOUT: 10.0,  # seconds a webhook receiver has in all to connect and to respond
    IMPORT_TIMEOUT: 60.0,  # seconds a box import's source has to connect and between reads
}

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config.yaml"

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


class ConfigurationError(ValueError):
    """A configuration value is missing or invalid."""


def _expand(value: str) -> Any:
    expanded = _ENV_REFERENCE.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
    if expanded == value:
        return value
    # A whole-value reference takes the type YAML gives it ("10" is a number).
    return yaml.safe_load(expanded) if expanded else expanded


def _expand_tree(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _expand_tree(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand_tree(value) for value in node]
    if isinstance(node, str):
        return _expand(node)
    return node


def load_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Load the YAML configuration, expanding ``${VAR:default}`` references."""
    config_path = Path(path or os.environ.get("ATLAS_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        with open(config_path, encoding="utf-8") as stream:
            raw = yaml.safe_load(stream) or {}
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"configuration file {config_path} not found; set ATLAS_CONFIG to its path"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(
            f"configuration file {config_path} is not valid YAML: {exc}"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigurationError(f"configuration file {config_path} must contain a mapping")
    config = _expand_tree(raw)
    config.setdefault(ATLAS, {})
    return config


def setting(config: dict[str, Any], key: str) -> Any:
    """Return the Atlas setting ``key``, or its default when the file leaves it out."""
    value = config.get(ATLAS, {}).get(key)
    if value is None or value == "":
        value = DEFAULTS[key]
    return value


def database_url(config: dict[str, Any]) -> str:
    try:
        return str(config[DB_URIS][DATA_DB_KEY])
    except KeyError as exc:
        raise ConfigurationError(f"{DB_URIS} must contain the key {DATA_DB_KEY!r}") from exc


def secret_key(config: dict[str, Any]) -> bytes:
    """Return the key that signs download and upload URLs.

    The gateway, data and binstore must share it; ``atlas up`` generates one
    under ``var/`` when the configuration leaves it empty.
    """
    key = setting(config, SECRET_KEY)
    if not key:
        raise ConfigurationError(
            "ATLAS.secret_key is empty; set ATLAS_SECRET_KEY to a long random string"
        )
    return str(key).encode()
