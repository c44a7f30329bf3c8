"""atlas names the broker, database or configuration it cannot use, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.suite_process import ROOT

BROKER = "pyamqp://guest:guest@127.0.0.1:5672"


def atlas(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        cwd=ROOT,
        env={**os.environ, "ATLAS_CONFIG": str(ROOT / "config.yaml"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ATLAS_AMQP_URI": "pyamqp://guest:guest@127.0.0.1:1/"},
            "cannot reach the message broker at pyamqp://guest:********@127.0.0.1:1/: ",
        ),
        (
            {"ATLAS_AMQP_URI": f"{BROKER}/atlas_missing_vhost"},
            "vhost atlas_missing_vhost not found",
        ),
        (
            {"ATLAS_AMQP_URI": "pyamqp://guest:not-the-password@127.0.0.1:5672/"},
            "ACCESS_REFUSED",
        ),
        (
            {"ATLAS_RPC_TIMEOUT": "soon"},
            "rpc_timeout (ATLAS_RPC_TIMEOUT) must be a positive number of seconds, not 'soon'",
        ),
    ],
)
def test_users_create_explains_unusable_broker(env: dict[str, str], message: str) -> None:
    result = atlas("users", "create", "nobody", **env)

    assert result.returncode == 1
    assert result.stderr.startswith("atlas: error: "), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "not-the-password" not in result.stderr


def test_migrate_explains_invalid_database_url() -> None:
    result = atlas("migrate", ATLAS_DATABASE_URL="not a url")

    assert result.returncode == 1
    assert result.stderr.startswith("atlas: error: invalid database URL (ATLAS_DATABASE_URL)")
    assert "Traceback" not in result.stderr


def test_invalid_yaml_configuration_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("ATLAS: [unclosed\n")

    result = atlas("--config", str(config), "users", "create", "nobody")

    assert result.returncode == 1
    assert result.stderr.startswith(f"atlas: error: configuration file {config} is not valid YAML")
    assert "Traceback" not in result.stderr
