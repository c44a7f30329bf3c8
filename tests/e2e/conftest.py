"""The whole suite started with ``atlas up`` as processes, and the real vagrant CLI."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import (
    RUN_ID,
    create_test_vhost,
    delete_test_vhost,
    drop_test_database,
    free_port,
)

ROOT = Path(__file__).resolve().parents[2]
ATLAS = [sys.executable, "-m", "services.cli.main"]
START_TIMEOUT = 90  # seconds


@dataclass
class RunningSuite:
    api_url: str
    env: dict[str, str]
    log_path: Path

    def atlas(self, *args: str) -> str:
        result = subprocess.run(
            [*ATLAS, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def create_user(self, username: str, password: str | None = None) -> str:
        args = ["users", "create", username]
        if password:
            args += ["--password", password]
        output = self.atlas(*args)
        match = re.search(r"token \(shown once, store it now\): (\S+)", output)
        assert match, output
        return match.group(1)


@pytest.fixture(scope="session")
def atlas_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    if shutil.which("vagrant") is None:
        pytest.fail("the vagrant CLI is not installed; .ci/run installs it from Debian")
    workdir = tmp_path_factory.mktemp("suite")
    database = f"atlas_e2e_{RUN_ID}"
    vhost = f"atlas_e2e_{RUN_ID}"
    gateway_port, binstore_port = free_port(), free_port()
    env = {
        **os.environ,
        "ATLAS_DATABASE_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
        "ATLAS_AMQP_URI": create_test_vhost(vhost),
        "ATLAS_GATEWAY_ADDRESS": f"127.0.0.1:{gateway_port}",
        "ATLAS_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
        "ATLAS_BINSTORE_ADDRESS": f"127.0.0.1:{binstore_port}",
        "ATLAS_BINSTORE_URL": f"http://127.0.0.1:{binstore_port}",
        "ATLAS_STORAGE_ROOT": str(workdir / "blobs"),
        "ATLAS_STATE_DIR": str(workdir / "state"),
        "PYTHONPATH": str(ROOT),
    }
    log_path = workdir / "atlas.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*ATLAS, "up"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    suite = RunningSuite(f"http://127.0.0.1:{gateway_port}", env, log_path)
    try:
        wait_for_health(suite, process)
        yield suite
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
        drop_test_database(database)
        delete_test_vhost(vhost)


def wait_for_health(suite: RunningSuite, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"atlas up exited early:\n{suite.log_path.read_text()[-4000:]}")
        try:
            if requests.get(suite.api_url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"the suite did not become healthy:\n{suite.log_path.read_text()[-4000:]}")


@dataclass
class Vagrant:
    """The vagrant CLI pointed at the suite, with its own VAGRANT_HOME."""

    env: dict[str, str]
    cwd: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["vagrant", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert result.returncode == 0, (
                f"vagrant {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture
def vagrant_factory(atlas_suite: RunningSuite, tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(token: str | None = None, name: str = "home") -> Vagrant:
        home = tmp_path / name
        home.mkdir()
        env = {key: value for key, value in os.environ.items() if not key.startswith("VAGRANT_")}
        env.update(
            VAGRANT_SERVER_URL=atlas_suite.api_url,
            VAGRANT_HOME=str(home),
            VAGRANT_CHECKPOINT_DISABLE="1",
            VAGRANT_NO_COLOR="1",
            VAGRANT_DEFAULT_PROVIDER="libvirt",
        )
        if token:
            env["VAGRANT_CLOUD_TOKEN"] = token
        return Vagrant(env, tmp_path)

    return make
