"""Run the benchmark pairs and write bench/results.md: ``python -m bench.run``."""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import tests.conftest  # noqa: F401 - applies eventlet's monkey patching first
from tests.suite_process import running_suite

from .jobs import jobs_pair
from .pairs import Row, metadata_pair, publish_box, rpc_pair, scale_pair
from .search import search_pair
from .tools import environment

HERE = Path(__file__).resolve().parent
PAIRS = ("metadata", "rpc", "scale", "search", "jobs")
# Worker concurrencies (jobs run at once) at which the jobs pair measures both sides.
JOB_CONCURRENCIES = [2, 4, 8, 16, 32]
# Rounds of the jobs pair at each concurrency, whose medians the table gives.
JOB_ROUNDS = 3


def render(rows: list[Row], facts: dict[str, str], quick: bool) -> str:
    lines = [
        "# Atlas benchmark results",
        "",
        f"Run on {dt.date.today().isoformat()} with `python -m bench.run"
        f"{' --quick' if quick else ''}`, every pair back to back in one run.",
        "",
        "| what | Atlas | peer | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        met = "n/a" if row.met is None else ("yes" if row.met else "no")
        lines.append(
            f"| {row.what} | {row.atlas} | {row.peer} | {row.ratio} | {row.target} | {met} |"
        )
    notes = [f"- {row.what}: {note}" for row in rows for note in row.notes]
    if notes:
        lines += ["", "Notes:", *notes]
    lines += ["", "Machine and versions:", ""]
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark Atlas beside its peers.")
    parser.add_argument("--quick", action="store_true", help="short runs, to check the harness")
    parser.add_argument("--only", default=",".join(PAIRS), help="comma-separated pairs to run")
    parser.add_argument("--output", default=str(HERE / "results.md"), help="results file")
    args = parser.parse_args(argv)
    selected = set(args.only.split(","))
    seconds = 2 if args.quick else 15
    rows: list[Row] = []

    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as workdir:
        with running_suite(Path(workdir) / "cached") as suite:
            token = suite.create_user("bench")
            publish_box(suite, token, "bench/base")
            if "metadata" in selected:
                rows.append(metadata_pair(suite, "bench/base", seconds))
            if "rpc" in selected:
                rows.append(rpc_pair(suite, "bench/base", 200 if args.quick else 3000, seconds))
        if "scale" in selected:
            # Cached reads would hide the database; this suite caches nothing.
            with running_suite(
                Path(workdir) / "uncached", {"ATLAS_METADATA_CACHE_TTL": "0"}
            ) as suite:
                suite.create_user("scale")
                small, large = (100, 1000) if args.quick else (1000, 100000)
                rows.append(scale_pair(suite, "scale", small, large, seconds))
        if "search" in selected:
            with running_suite(Path(workdir) / "search") as suite:
                small, large = (100, 1000) if args.quick else (1000, 100000)
                rows.append(search_pair(suite, small, large, seconds))
        if "jobs" in selected:
            count = 20 if args.quick else 2000
            rounds = 1 if args.quick else JOB_ROUNDS
            concurrencies = [8] if args.quick else JOB_CONCURRENCIES
            rows.append(jobs_pair(Path(workdir) / "jobs", count, concurrencies, rounds))

    Path(args.output).write_text(render(rows, environment(), args.quick))
    print(Path(args.output).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
