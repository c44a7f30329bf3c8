"""Batcher: concurrent callers share batches and each gets its own result or error."""

from __future__ import annotations

import eventlet
import pytest

from services.toolkit import batching
from services.toolkit.batching import Batcher


def run_callers(batcher: Batcher[int, int], items: list[int], process) -> list[object]:
    """Submit each item from its own green thread; return each result or raised error."""

    def call(item: int) -> object:
        try:
            return batcher.submit(item, process)
        except Exception as exc:
            return exc

    threads = [eventlet.spawn(call, item) for item in items]
    return [thread.wait() for thread in threads]


def test_ready_callers_share_first_batch() -> None:
    batches: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        batches.append(items)
        eventlet.sleep(0.01)
        return [item * 2 for item in items]

    results = run_callers(Batcher(10), [0, 1, 2, 3, 4], double)

    assert results == [0, 2, 4, 6, 8]
    assert batches == [[0, 1, 2, 3, 4]]


def test_callers_that_arrive_during_a_batch_share_the_next() -> None:
    batcher: Batcher[int, int] = Batcher(10)
    batches: list[list[int]] = []

    def echo(items: list[int]) -> list[int]:
        batches.append(items)
        eventlet.sleep(0.01)
        return items

    first = eventlet.spawn(batcher.submit, 0, echo)
    eventlet.sleep(0.005)
    results = run_callers(batcher, [1, 2, 3], echo)

    assert first.wait() == 0
    assert results == [1, 2, 3]
    assert batches == [[0], [1, 2, 3]]


def test_woken_callers_share_next_batch() -> None:
    """Callers that submit again soon after their results share the next batch."""
    batcher: Batcher[tuple[int, int], tuple[int, int]] = Batcher(10)
    sizes: list[int] = []

    def echo(items: list[tuple[int, int]]) -> list[tuple[int, int]]:
        sizes.append(len(items))
        eventlet.sleep(0.005)
        return items

    def loop(caller: int) -> None:
        for round_ in range(3):
            batcher.submit((caller, round_), echo)
            # Work between two submits that lets other green threads run once.
            eventlet.sleep(0)

    threads = [eventlet.spawn(loop, caller) for caller in range(4)]
    for thread in threads:
        thread.wait()

    assert sizes == [4, 4, 4]


def test_batches_hold_at_most_max_size_items() -> None:
    batches: list[list[int]] = []

    def echo(items: list[int]) -> list[int]:
        batches.append(items)
        eventlet.sleep(0.01)
        return items

    results = run_callers(Batcher(2), [0, 1, 2, 3, 4], echo)

    assert results == [0, 1, 2, 3, 4]
    assert batches == [[0, 1], [2, 3], [4]]


def test_failed_batch_raises_in_each_of_its_callers_only() -> None:
    def fail_on_three(items: list[int]) -> list[int]:
        eventlet.sleep(0.01)
        if 3 in items:
            raise RuntimeError("three is not allowed")
        return items

    results = run_callers(Batcher(2), [0, 1, 2, 3, 4], fail_on_three)

    assert results[:2] == [0, 1]
    assert [str(result) for result in results[2:4]] == ["three is not allowed"] * 2
    assert all(isinstance(result, RuntimeError) for result in results[2:4])
    assert results[4] == 4


def test_wrong_number_of_results_is_an_error() -> None:
    results = run_callers(Batcher(10), [0], lambda items: [])

    assert isinstance(results[0], ValueError)
    assert str(results[0]) == "processing 1 items returned 0 results"


def test_max_size_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_size must be at least 1, not 0"):
        Batcher(0)


def test_wake_first_callers_resume_first() -> None:
    batcher: Batcher[int, int] = Batcher(10)
    resumed: list[int] = []

    def echo(items: list[int]) -> list[int]:
        eventlet.sleep(0.005)
        return items

    def call(item: int) -> None:
        batcher.submit(item, echo, wake_first=item >= 3)
        resumed.append(item)

    threads = [eventlet.spawn(call, item) for item in range(6)]
    for thread in threads:
        thread.wait()

    # No batch follows, so the others (the leader 0 among them) resume after a short wait.
    assert resumed == [3, 4, 5, 0, 1, 2]


def test_other_callers_resume_once_next_batch_goes_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # Long enough that only the next batch can wake the other caller.
    monkeypatch.setattr(batching, "DEFERRED_WAKE_LIMIT", 30.0)
    batcher: Batcher[str, str] = Batcher(10)
    resumed: list[str] = []
    # Whether the first batch's other caller had resumed when the second batch
    # began, and once the second batch's processing yielded.
    seen: dict[str, bool] = {}

    def echo(items: list[str]) -> list[str]:
        if "next" in items:
            seen["at start"] = "other" in resumed
            eventlet.sleep(0)
            seen["after yield"] = "other" in resumed
        eventlet.sleep(0.001)
        return items

    def first() -> None:
        batcher.submit("first", echo, wake_first=True)
        resumed.append("first")
        batcher.submit("next", echo)

    def other() -> None:
        batcher.submit("other", echo)
        resumed.append("other")

    threads = [eventlet.spawn(first), eventlet.spawn(other)]
    for thread in threads:
        thread.wait()

    assert resumed == ["first", "other"]
    assert seen["at start"] is False
    assert seen["after yield"] is True


def test_other_callers_resume_without_next_batch() -> None:
    batcher: Batcher[str, str] = Batcher(10)
    resumed: list[str] = []

    def echo(items: list[str]) -> list[str]:
        return items

    def call(item: str, wake_first: bool) -> None:
        batcher.submit(item, echo, wake_first=wake_first)
        resumed.append(item)

    threads = [eventlet.spawn(call, "first", True), eventlet.spawn(call, "other", False)]
    with eventlet.Timeout(5):
        for thread in threads:
            thread.wait()

    assert resumed == ["first", "other"]
