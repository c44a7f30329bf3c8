"""The supervisor of ``atlas up`` stops its services in stages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.cli.supervisor import ServiceProcess, Supervisor

# A service that notes when SIGTERM reaches it and when it exits, a moment later.
SLOW_STOPPER = """
import signal, sys, time
def note(event):
    with open(sys.argv[1], "a") as notes:
        notes.write(f"{sys.argv[2]} {event} {time.monotonic()}\\n")
def stop(signum, frame):
    note("signalled")
    time.sleep(1)
    note("exited")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


class NotingProcess(ServiceProcess):
    def __init__(self, name: str, stop_stage: int, notes: Path) -> None:
        super().__init__(name, {}, stop_stage=stop_stage)
        self.notes = notes

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SLOW_STOPPER, str(self.notes), self.name],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == b"ready\n"


def test_stop_runs_stages_in_order(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    services = [
        NotingProcess("data", 2, notes),
        NotingProcess("binstore", 1, notes),
        NotingProcess("gateway", 0, notes),
        NotingProcess("workers", 0, notes),
    ]
    supervisor = Supervisor(list(services), grace_period=5)
    supervisor.start()

    supervisor.stop()

    times = {}
    for line in notes.read_text().splitlines():
        name, event, at = line.split()
        times[name, event] = float(at)
    assert [service.process and service.process.returncode for service in services] == [0] * 4
    assert times["binstore", "signalled"] >= times["gateway", "exited"]
    assert times["binstore", "signalled"] >= times["workers", "exited"]
    assert times["data", "signalled"] >= times["binstore", "exited"]
    # The services of one stage get SIGTERM together, not one after the other.
    assert times["workers", "signalled"] < times["gateway", "exited"]
