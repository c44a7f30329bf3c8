"""The whole suite started with ``atlas up`` as processes, and the real vagrant CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.suite_process import RunningSuite, SuiteFailed, running_suite


@pytest.fixture(scope="session")
def atlas_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    if shutil.which("vagrant") is None:
        pytest.fail("the vagrant CLI is not installed; .ci/run installs it from Debian")
    try:
        with running_suite(tmp_path_factory.mktemp("suite")) as suite:
            yield suite
    except SuiteFailed as exc:
        pytest.fail(str(exc))


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
