"""The job state machine's table, as the job page reads it."""

from __future__ import annotations

import pytest

from services.data.jobs import user_triggers
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


@pytest.mark.parametrize("state", ["queued", "running", "failed"])
def test_inspect_jobs_offer_no_cancel(state: str) -> None:
    assert "cancel" not in user_triggers("box.inspect", state)
    assert user_triggers("box.import", state) == accepted_triggers(state)
