"""Blocking calls on operating-system threads, so one green thread's disk work stalls no other.

Services run on eventlet, where a call that blocks (``fsync``, a write to a
slow disk) stops every green thread of the process until it returns.
hashlib and file writes release the GIL, so on a thread they also run in
parallel with the green threads that read the network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import eventlet
from eventlet import tpool

T = TypeVar("T")


def run_in_thread(function: Callable[..., T], *args: Any) -> T:
    """Call ``function(*args)`` on a thread; wait for it and return its result."""
    return tpool.execute(function, *args)


class Pending:
    """A call running on a thread; ``wait()`` returns its result or raises its error."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self._thread = eventlet.spawn(tpool.execute, function, *args)

    def wait(self) -> Any:
        return self._thread.wait()


def start_in_thread(function: Callable[..., Any], *args: Any) -> Pending:
    """Start ``function(*args)`` on a thread and return at once."""
    return Pending(function, *args)
