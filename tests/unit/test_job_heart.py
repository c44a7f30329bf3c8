"""Heart: an attempt's heartbeats start after their interval and stop with the attempt."""

from __future__ import annotations

import eventlet

from services.toolkit.jobs import Heart


def test_heart_stopped_early_never_beats() -> None:
    beats: list[float] = []
    heart = Heart(lambda: beats.append(1.0), 0.1)

    heart.stop()
    eventlet.sleep(0.2)

    assert beats == []


def test_heart_beats_until_stopped() -> None:
    beats: list[int] = []

    def beat() -> None:
        while True:
            beats.append(len(beats))
            eventlet.sleep(0.05)

    heart = Heart(beat, 0.2)
    eventlet.sleep(0.05)
    assert beats == []

    eventlet.sleep(0.3)
    heart.stop()
    count = len(beats)
    eventlet.sleep(0.15)

    assert count >= 1
    assert len(beats) == count


def test_heart_stop_does_not_yield() -> None:
    """Stopping before the first beat lets no other green thread run."""
    ran: list[bool] = []
    heart = Heart(lambda: None, 1.0)
    eventlet.spawn(ran.append, True)

    heart.stop()

    assert ran == []
    eventlet.sleep(0)
    assert ran == [True]
