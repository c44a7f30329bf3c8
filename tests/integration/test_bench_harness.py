"""The benchmark harness runs end to end and writes its table (figures are not checked).

The quick run measures each pair briefly, the jobs pair with 20 jobs per side.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.suite_process import ROOT


def test_bench_quick_run_writes_results(tmp_path: Path) -> None:
    output = tmp_path / "results.md"

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--only",
            "metadata,rpc,jobs",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    table = output.read_text()
    assert "box metadata GET" in table
    assert "bare nameko RPC ping" in table
    assert "(wrk, 1 connection)" in table
    assert "Python's http.client on one connection" in table
    assert "get_box RPC alone" in table
    assert "end-to-end no-op jobs" in table
    assert "Celery 5.7.0, acks_late" in table
    assert "- cores: " in table
