"""``atlas up``: migrate, then start every service as its own process and keep it running."""

from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path
from typing import Any

import requests
from nameko.web.server import parse_address

from services.toolkit import config as cfg

from ..common import say
from ..database import ROOT, migrate
from ..supervisor import ServiceProcess, Supervisor, service_env

# Services `atlas up` starts, in order; each runs in its own process.
SUITE = ("data", "binstore", "gateway", "jobs", "workers")
# The stage in which a service stops, 0 for those not listed. Every other
# service calls data, so data stops once they have exited.
STOP_STAGES = {"data": 1}
READY_TIMEOUT = 60.0  # seconds `atlas up` waits for /health to pass


def operations_addresses(config: dict[str, Any], names: list[str]) -> dict[str, str]:
    """Return the operations address of each of ``names``, services without an HTTP port.

    The first gets ``ATLAS.operations_address`` and each next one the port
    after, since processes on one port would share it (SO_REUSEPORT) and a
    request would reach any of them. Port 0 gives each a free port.
    """
    setting = str(cfg.setting(config, cfg.OPERATIONS_ADDRESS))
    if not setting:
        return {}
    bind = parse_address(setting)
    return {
        name: f"{bind.address}:{bind.port + index if bind.port else 0}"
        for index, name in enumerate(names)
    }


def register(commands: Any) -> None:
    up = commands.add_parser(
        "up",
        help="migrate the database and start every service",
        description="Migrate the database, then start every service as its own process "
        "and restart any that exits. Ctrl+C stops them all.",
    )
    up.set_defaults(func=cmd_up)


def ensure_secret_key(config: dict[str, Any], state_dir: Path) -> str:
    """Return the configured secret key, or one kept in ``state_dir`` and made on first use."""
    configured = cfg.setting(config, cfg.SECRET_KEY)
    if configured:
        return str(configured)
    key_file = state_dir / "secret_key"
    if not key_file.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def wait_until_ready(health_url: str, supervisor: Supervisor) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and not supervisor.stopping:
        try:
            if requests.get(health_url, timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def cmd_up(config: dict[str, Any], args: argparse.Namespace) -> int:
    migrate(cfg.database_url(config))
    state_dir = Path(os.environ.get("ATLAS_STATE_DIR", ROOT / "var"))
    env = service_env(
        dict(os.environ),
        ATLAS_SECRET_KEY=ensure_secret_key(config, state_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    addresses = {
        "gateway": str(cfg.setting(config, cfg.GATEWAY_ADDRESS)),
        "binstore": str(cfg.setting(config, cfg.BINSTORE_ADDRESS)),
    }
    # Several gateway processes share its port (SO_REUSEPORT) and the kernel
    # spreads connections among them, so the gateway uses more than one core.
    instance_counts = {"gateway": int(cfg.setting(config, cfg.GATEWAY_INSTANCES))}
    operations = operations_addresses(config, [name for name in SUITE if name not in addresses])
    processes = [
        ServiceProcess(
            name,
            service_env(env, ATLAS_WEB_SERVER_ADDRESS=addresses[name])
            if name in addresses
            else service_env(env, ATLAS_OPERATIONS_ADDRESS=operations.get(name, "")),
            stop_stage=STOP_STAGES.get(name, 0),
        )
        for name in SUITE
        for _ in range(instance_counts.get(name, 1))
    ]
    supervisor = Supervisor(processes, float(cfg.setting(config, cfg.SHUTDOWN_GRACE_PERIOD)))
    supervisor.start()
    public_url = str(cfg.setting(config, cfg.PUBLIC_URL)).rstrip("/")
    if wait_until_ready(f"http://{addresses['gateway']}/health", supervisor):
        say(
            f"Atlas is up: API at {public_url}, binstore at {cfg.setting(config, cfg.BINSTORE_URL)}"
        )
        say("Press Ctrl+C to stop.")
    elif not supervisor.stopping:
        say(f"warning: {public_url}/health did not pass within {READY_TIMEOUT:g} seconds")
    supervisor.watch(say)
    say("Atlas stopped")
    return 0
