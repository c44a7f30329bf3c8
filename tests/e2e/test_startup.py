"""A normal start of the whole suite with ``atlas up``."""

from __future__ import annotations

from tests.suite_process import RunningSuite


def test_normal_start_logs_no_warning(atlas_suite: RunningSuite) -> None:
    # The suite is this module's own, so its log contains the start alone.
    log = atlas_suite.log_path.read_text(errors="replace")

    lines = log.splitlines()
    warnings = [line for line in lines if " WARNING " in line]
    errors = [line for line in lines if " ERROR " in line]

    assert "started gateway" in log
    assert warnings == []
    assert errors == []
