"""Reports how many cases the fuzzing tests sent, by status class, after the run."""

from __future__ import annotations

from collections import Counter
from typing import Any

# Status classes ("2xx", "4xx", ...) of every response the fuzzing tests received.
RESPONSES: Counter[str] = Counter()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESPONSES:
        return
    by_class = ", ".join(f"{count} {status}" for status, count in sorted(RESPONSES.items()))
    total = sum(RESPONSES.values())
    terminalreporter.write_line(f"schemathesis sent {total} cases to the gateway: {by_class}")
