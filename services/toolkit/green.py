"""The concurrency primitives Atlas services use, in one place.

They are eventlet's today (nameko 2 runs on it). Code outside the toolkit
uses these names instead of importing eventlet, so that moving to another
concurrency library changes this module, not the services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import eventlet
from eventlet.greenthread import GreenThread
from eventlet.semaphore import Semaphore

__all__ = ["GreenThread", "Semaphore", "kill", "sleep", "spawn"]


def spawn(function: Callable[..., Any], *args: Any, **kwargs: Any) -> GreenThread:
    """Run ``function`` concurrently; it gets turns whenever the caller waits on I/O."""
    return eventlet.spawn(function, *args, **kwargs)


def kill(thread: GreenThread) -> None:
    """Stop ``thread`` at its next wait; a thread that already ended is left alone."""
    thread.kill()


def sleep(seconds: float) -> None:
    eventlet.sleep(seconds)
