"""Group commit: items that green threads hand in while a batch runs go out in the next batch.

A dispatcher that publishes one job at a time pays one database transaction
per job. ``Batcher`` lets each caller wait for its own item as before while
the items of concurrent callers share one call of the processing function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import eventlet
from eventlet.event import Event

from services.toolkit.errors import ServiceUnavailable

# Maximum number of times a leader yields to other ready green threads before
# it takes a batch. It stops sooner once two yields in a row add no item.
GATHER_ROUNDS = 8
# Seconds the callers of a batch that did not ask to wake first may wait for
# the next batch to go out before they are woken anyway.
DEFERRED_WAKE_LIMIT = 0.005

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

    Callers that submitted with ``wake_first`` are woken at once. When a
    batch had such callers, the others wake once the next batch has gone out
    (or after ``DEFERRED_WAKE_LIMIT`` seconds, if none goes out), so that
    their work runs while the next batch is processed rather than delay it.
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size}")
        self.max_size = max_size
        self._waiting: list[tuple[T, Event]] = []
        # Events of the callers to wake before the others of their batch.
        self._first: set[Event] = set()
        # The callers to wake, with their results, once the next batch has gone out.
        self._deferred: list[tuple[Event, R]] = []
        self._deferred_timer: Any = None
        self._leading = False

    def submit(self, item: T, process: Callable[[list[T]], list[R]], wake_first: bool = False) -> R:
        """Have ``item`` processed and return its result; ``process`` runs if this caller leads.

        With ``wake_first`` the caller resumes as soon as its batch is
        processed, and the callers of its batch that submitted without it
        resume once the next batch has gone out. Use it for callers that
        start new work with the result, ahead of callers that only clean up.
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
                # The callers woken here run once process() yields to wait for its call.
                self._wake_deferred()
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
                    self._answer(batch, results)
                self._first.difference_update(done for _, done in batch)
                batch = []
        except BaseException:
            # The leader was killed because its service is stopping. No other
            # caller would process the rest, so their calls fail at once.
            stopped = ServiceUnavailable("the batch was abandoned because its service is stopping")
            self._wake_deferred()
            for _, done in batch + self._waiting:
                if not done.ready():
                    done.send_exception(stopped)
            self._waiting = []
            self._first.clear()
            raise
        finally:
            self._leading = False

    def _answer(self, batch: list[tuple[T, Event]], results: list[R]) -> None:
        """Wake the wake-first callers of ``batch``, and the others now or with the next batch."""
        first: list[tuple[Event, R]] = []
        others: list[tuple[Event, R]] = []
        for (_, done), result in zip(batch, results, strict=True):
            (first if done in self._first else others).append((done, result))
        # Event.send schedules its waiter, so the callers resume in the order of the sends.
        for done, result in first:
            done.send(result)
        if not first:
            for done, result in others:
                done.send(result)
            return
        if not others:
            return
        self._deferred.extend(others)
        if self._deferred_timer is None:
            # A hub timer, because cancelling it does not yield, as killing a green thread does.
            hub = eventlet.hubs.get_hub()
            self._deferred_timer = hub.schedule_call_global(
                DEFERRED_WAKE_LIMIT, self._wake_deferred
            )

    def _wake_deferred(self) -> None:
        # Also runs in the hub as the timer's callback: Event.send only schedules.
        if self._deferred_timer is not None:
            self._deferred_timer.cancel()
            self._deferred_timer = None
        deferred, self._deferred = self._deferred, []
        for done, result in deferred:
            done.send(result)

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
