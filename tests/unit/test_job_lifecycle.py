"""The job state machine's table, as the job page reads it."""

from __future__ import annotations

import pytest

from services.data.lifecycle import accepted_triggers


@pytest.mark.parametrize(
    ("state", "triggers"),
    [
        ("pending", ["cancel"]),
        ("queued", ["cancel"]),
        ("running", ["cancel"]),
        ("retrying", ["cancel"]),
        ("failed", ["retry"]),
        ("succeeded", []),
        ("cancelled", []),
    ],
)
def test_people_triggers_follow_state_machine(state: str, triggers: list[str]) -> None:
    assert accepted_triggers(state) == triggers


def test_accepted_triggers_takes_other_triggers() -> None:
    assert accepted_triggers("running", ("start", "succeed", "fail")) == ["succeed", "fail"]
