"""The data service killed with SIGKILL under a running suite, and restarted by ``atlas up``."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.faults.conftest import (
    REQUEST_TIMEOUT,
    FaultySuite,
    assert_unavailable,
    healthy,
    wait_until,
)
from tests.publishing import api_publish


def service_pids(supervisor_pid: int, service: str) -> list[int]:
    """Return the ids of the processes that ``atlas up`` runs ``service`` in."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == supervisor_pid and command[-2:] == [service.encode(), b""]:
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextmanager
def supervisor_paused(pid: int) -> Iterator[None]:
    """Stop ``atlas up`` so that it restarts nothing until the block ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_killed_data_service_recovers(faults: FaultySuite) -> None:
    client = faults.client()
    tag = api_publish(client, client.username)
    supervisor = faults.suite.pid
    [data_pid] = service_pids(supervisor, "data")
    before = faults.counts(client.username)

    with supervisor_paused(supervisor):
        os.kill(data_pid, signal.SIGKILL)
        wait_until(lambda: not alive(data_pid), "the data process exiting")
        read = client.get(f"/api/v1/box/{tag}", timeout=REQUEST_TIMEOUT)
        created = client.post(
            "/api/v1/boxes",
            json={"username": client.username, "name": "made-while-down"},
            timeout=REQUEST_TIMEOUT,
        )
    assert_unavailable(read)
    assert_unavailable(created)

    restarted = wait_until(lambda: service_pids(supervisor, "data"), "atlas up restarting data")
    assert restarted != [data_pid]
    wait_until(lambda: healthy(faults.suite), "the suite passing its health check")
    assert client.get(f"/api/v1/box/{tag}", timeout=REQUEST_TIMEOUT).status_code == 200
    # The restarted service did not carry out the create request whose
    # caller got 503.
    assert faults.counts(client.username) == before
    retried = client.post(
        "/api/v1/boxes",
        json={"username": client.username, "name": "made-while-down"},
        timeout=REQUEST_TIMEOUT,
    )
    assert retried.status_code == 200, retried.text
