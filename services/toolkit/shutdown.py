"""Graceful stop of the services in one process, on SIGTERM or SIGINT.

The stop runs in three steps, for every service the process runs, once
the services have finished starting (a signal that comes during the start
waits for it, as ``services.toolkit.container`` explains):

1. Every extension that defines ``before_stop()`` is called first.
   ``ConsulRegistration`` deregisters the instance there, so that nothing
   discovers it while it drains, and the HTTP server closes its listening
   socket, so that new connections go to other instances.
2. Each container stops as nameko does it: entrypoints stop taking new
   messages and requests, in-flight workers finish, then the dependencies
   stop. The HTTP server lets the responses under way reach their clients.
3. A container still stopping after ``ATLAS.shutdown_grace_period`` seconds
   is killed. The work still under way is interrupted and unwinds, so an
   upload removes its temporary file and records nothing.

A second signal during the stop kills every container at once. A new
service gets all of this from ``services.toolkit.runner`` without code of
its own; an extension with something to do before the drain defines
``before_stop()``.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import eventlet
from nameko.runners import ServiceRunner

from services.toolkit import config as cfg
from services.toolkit.container import wait_until_started

log = logging.getLogger(__name__)


def grace_period(config: dict[str, Any]) -> float:
    """Return the seconds in-flight work may take once a stop begins."""
    return max(0.0, float(cfg.setting(config, cfg.SHUTDOWN_GRACE_PERIOD)))


def call_before_stop(container: Any) -> None:
    """Call ``before_stop()`` of each of the container's extensions that defines it."""
    for extension in container.extensions:
        hook = getattr(extension, "before_stop", None)
        if not callable(hook):
            continue
        try:
            hook()
        except Exception:  # one failing hook must not keep the others from running
            log.exception("%s failed to prepare the stop of %s", extension, container.service_name)


def stop_container(container: Any, deadline: float) -> bool:
    """Stop ``container`` gracefully, or kill it at ``deadline``. Return whether it drained."""
    stopping = eventlet.spawn(container.stop)
    try:
        with eventlet.Timeout(max(0.0, deadline - time.monotonic())):
            stopping.wait()
        return True
    except eventlet.Timeout:
        log.warning(
            "%s did not finish its work within the grace period; interrupting the rest",
            container.service_name,
        )
    except Exception:
        log.exception("stopping %s failed; killing it", container.service_name)
    # The stop must not go on beside the kill, which stops every extension itself.
    stopping.kill()
    container.kill()
    return False


class GracefulStop:
    """Stop a ``ServiceRunner``'s containers on SIGTERM or SIGINT within a grace period."""

    def __init__(self, runner: ServiceRunner, grace_period: float) -> None:
        self.runner = runner
        self.grace_period = grace_period
        self.stopping = False
        self.thread: Any = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle_signal)
        # A process started with SIGINT ignored keeps ignoring it. `atlas up`
        # starts services that way and turns a Ctrl+C into one SIGTERM each,
        # so the terminal's SIGINT to the whole process group does not count
        # as a second signal that skips the grace period.
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, self.handle_signal)

    def handle_signal(self, signum: int, frame: Any) -> None:
        # Signal handlers run outside the hub and must not block on it.
        if self.stopping:
            log.warning("received signal %d again; stopping without waiting for work", signum)
            eventlet.spawn_n(self.runner.kill)
            return
        self.stopping = True
        log.info(
            "received signal %d; finishing work under way for up to %g seconds",
            signum,
            self.grace_period,
        )
        self.thread = eventlet.spawn(self.stop)

    def wait(self) -> None:
        """Return once a stop that a signal began has finished, logging included."""
        if self.thread is not None:
            self.thread.wait()

    def stop(self) -> None:
        deadline = time.monotonic() + self.grace_period
        containers = list(self.runner.containers)
        for container in containers:
            if not wait_until_started(container, deadline - time.monotonic()):
                log.warning(
                    "%s did not finish starting within the grace period; killing it",
                    container.service_name,
                )
                self.runner.kill()
                return
        for container in containers:
            call_before_stop(container)
        pool = eventlet.GreenPool(max(1, len(containers)))
        drained = list(pool.imap(lambda container: stop_container(container, deadline), containers))
        if all(drained):
            log.info("finished all work under way")
