"""The `atlas jobs` commands against the suite started with `atlas up`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.boxes import build_box
from tests.conftest import unique


def test_jobs_list_show_and_rebuild(atlas_suite: Any, vagrant_factory: Any, tmp_path: Path) -> None:
    username = unique("operator")
    token = atlas_suite.create_user(username)
    box_file = tmp_path / "tools.box"
    box_file.write_bytes(build_box("libvirt"))
    vagrant_factory(token).run(
        "cloud", "publish", f"{username}/tools", "0.1.0", "libvirt", str(box_file), "--force"
    )

    listing = atlas_suite.atlas(
        "jobs", "list", "--kind", "box.inspect", "--box", f"{username}/tools"
    )
    job_id = re.search(r"^\s*(\d+)\s", listing, re.MULTILINE)
    shown = atlas_suite.atlas("jobs", "show", job_id.group(1)) if job_id else ""
    rebuilt = atlas_suite.atlas("jobs", "rebuild")

    assert "box.inspect" in listing
    assert job_id is not None
    assert "kind: box.inspect" in shown
    assert "pending -> queued  enqueue  attempt 1  by jobs" in shown
    assert re.search(r"republished \d+ queued jobs", rebuilt)
