"""Group commit: items that green threads hand in while a batch runs go out in the next batch.

A dispatcher that publishes one job at a time pays one database transaction
per job. ``Batcher`` lets each caller wait for its own item as before while
the items of concurrent callers share one call of the processing function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import eventlet
from eventlet.event import Event

from services.toolkit.errors import ServiceUnavailable

# Maximum number of times a leader yields to other ready green threads before
# it takes a batch. It stops sooner once two yields in a row add no item.
GATHER_ROUNDS = 8

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Processes the items of concurrent callers together, up to ``max_size`` at a time.

    No green thread of its own runs it: the caller that finds no batch
    running leads, and processes batches until none is left waiting. Before
    it takes a batch, the leader yields to the green threads that are ready
    to run, so that callers woken by the same event (the reply to the last
    batch, say) join this batch rather than wait for the next one. The
    processing function takes a list of items and returns a list of as many
    results, in the same order. Every caller gets its own item's result once
    its batch was processed, or the exception that processing the batch raised.
    Callers that submitted with ``wake_first`` are woken before the others.
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size}")
        self.max_size = max_size
        self._waiting: list[tuple[T, Event]] = []
        # Events of the callers to wake before the others of their batch.
        self._first: set[Event] = set()
        self._leading = False

    def submit(self, item: T, process: Callable[[list[T]], list[R]], wake_first: bool = False) -> R:
        """Have ``item`` processed and return its result; ``process`` runs if this caller leads.

        With ``wake_first`` the caller resumes before the callers of its
        batch that submitted without it. Use it for callers that start new
        work with the result, ahead of callers that only clean up.
        """
        done = Event()
        if wake_first:
            self._first.add(done)
        self._waiting.append((item, done))
        if not self._leading:
            self._lead(process)
        result: R = done.wait()
        return result

    def _lead(self, process: Callable[[list[T]], list[R]]) -> None:
        self._leading = True
        batch: list[tuple[T, Event]] = []
        try:
            while self._waiting:
                self._gather()
                batch = self._waiting[: self.max_size]
                del self._waiting[: self.max_size]
                try:
                    results = process([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise ValueError(
                            f"processing {len(batch)} items returned {len(results)} results"
                        )
                except Exception as exc:
                    for _, done in batch:
                        done.send_exception(exc)
                else:
                    answered = list(zip(batch, results, strict=True))
                    # Event.send schedules its waiter, so the order of the sends is
                    # the order in which the callers resume.
                    answered.sort(key=lambda answer: answer[0][1] not in self._first)
                    for (_, done), result in answered:
                        done.send(result)
                self._first.difference_update(done for _, done in batch)
                batch = []
        except BaseException:
            # The leader was killed because its service is stopping. No other
            # caller would process the rest, so their calls fail at once.
            stopped = ServiceUnavailable("the batch was abandoned because its service is stopping")
            for _, done in batch + self._waiting:
                if not done.ready():
                    done.send_exception(stopped)
            self._waiting = []
            self._first.clear()
            raise
        finally:
            self._leading = False

    def _gather(self) -> None:
        """Yield to ready green threads until two yields add nothing or the batch is full."""
        idle = 0
        for _ in range(GATHER_ROUNDS):
            waiting = len(self._waiting)
            if waiting >= self.max_size:
                return
            eventlet.sleep(0)
            if len(self._waiting) == waiting:
                idle += 1
            else:
                idle = 0
            if idle == 2:
                return
