"""A normal start of the whole suite with ``atlas up``."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest
import requests

from tests.suite_process import RunningSuite, SuiteFailed, running_suite


def test_normal_start_logs_no_warning(atlas_suite: RunningSuite) -> None:
    # The suite is this module's own, so its log contains the start alone.
    log = atlas_suite.log_path.read_text(errors="replace")

    lines = log.splitlines()
    warnings = [line for line in lines if " WARNING " in line]
    errors = [line for line in lines if " ERROR " in line]

    assert "started gateway" in log
    assert warnings == []
    assert errors == []


def free_port_run(count: int) -> int:
    """Return the first of ``count`` consecutive ports that are free on 127.0.0.1."""
    for _ in range(50):
        first = random.randint(20000, 60000)
        probes = []
        try:
            for port in range(first, first + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return first
    raise AssertionError(f"found no {count} consecutive free ports")


def test_each_service_gets_its_own_operations_port(tmp_path: Path) -> None:
    first = free_port_run(3)
    env = {"ATLAS_OPERATIONS_ADDRESS": f"127.0.0.1:{first}"}
    try:
        with running_suite(tmp_path, env):
            reports = [
                requests.get(f"http://127.0.0.1:{port}/health/instance", timeout=10).json()
                for port in range(first, first + 3)
            ]
    except SuiteFailed as exc:
        pytest.fail(str(exc))

    # data's report alone has the database check; the three come from three processes.
    assert "db" in reports[0]["checks"]
    assert all("db" not in report["checks"] for report in reports[1:])
    assert len({report["instance"] for report in reports}) == 3
