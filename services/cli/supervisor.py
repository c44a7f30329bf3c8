"""Start every Atlas service as its own process and keep them running.

A service that exits unexpectedly is started again after a short pause.
SIGINT or SIGTERM stops all of them in stages. The services of a stage
get SIGTERM together once every service of the earlier stages has
exited, and SIGKILL if one is still running ``STOP_MARGIN`` seconds after
its own grace period. So the services that others call stop last, and
the work the others finish while they stop can still reach them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Seconds a service gets beyond its grace period to stop its extensions and
# exit, before SIGKILL.
STOP_MARGIN = 10.0
RESTART_DELAY = 2.0  # seconds before a crashed service is started again


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    # Stages stop in ascending order, so a service gets a higher stage than its callers.
    stop_stage: int = 0
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.toolkit.runner", self.name],
            env=self.env,
            # Ctrl+C reaches the service as the supervisor's SIGTERM only.
            preexec_fn=_ignore_sigint,
        )
        self.started_at = time.monotonic()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Supervisor:
    def __init__(self, services: list[ServiceProcess], grace_period: float) -> None:
        self.services = services
        # Seconds the services may take to finish their work after SIGTERM.
        self.grace_period = grace_period
        self.stopping = False

    def start(self) -> None:
        for service in self.services:
            service.start()

    def request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def watch(self, log: Callable[[str], None]) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        while not self.stopping:
            for service in self.services:
                assert service.process is not None
                code = service.process.poll()
                if code is not None and not self.stopping:
                    log(f"service {service.name} exited with code {code}; restarting it")
                    time.sleep(RESTART_DELAY)
                    service.restarts += 1
                    service.start()
            time.sleep(0.5)
        self.stop()

    def stop(self) -> None:
        for stage in sorted({service.stop_stage for service in self.services}):
            self._stop_all([service for service in self.services if service.stop_stage == stage])

    def _stop_all(self, services: list[ServiceProcess]) -> None:
        for service in services:
            if service.process and service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_period + STOP_MARGIN
        for service in services:
            if service.process is None:
                continue
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()


def service_env(base: dict[str, str], **overrides: str) -> dict[str, str]:
    env = dict(base)
    env.update(overrides)
    return env
