"""The binstore benchmark's harness, run end to end on a small file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # seconds for the whole run, far more than a 4 MiB file needs


def test_benchmark_writes_report_and_cleans_up(tmp_path: Path) -> None:
    output = tmp_path / "results.md"
    workdir = tmp_path / "work"

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.binstore",
            "--size",
            "4MiB",
            "--rounds",
            "1",
            "--output",
            str(output),
            "--workdir",
            str(workdir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    report = output.read_text()
    assert "| download, nginx sendfile |" in report
    assert "| download, binstore |" in report
    assert "| sha256 with hashlib |" in report
    assert "| upload with sha256 checksum, binstore |" in report
    assert "| peak RSS growth of binstore during an upload |" in report
    assert "- cores: " in report
    assert "only show that the harness works" in report
    assert list(workdir.iterdir()) == []
