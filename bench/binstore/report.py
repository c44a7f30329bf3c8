"""The Markdown report of a benchmark run, with its figures, ratios and targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

MIB = 1024 * 1024

# Targets that Atlas sets for binstore.
DOWNLOAD_TARGET = 0.8  # times nginx's throughput
UPLOAD_TARGET = 0.35  # times hashlib's sha256 throughput
RSS_TARGET = 50 * 1000 * 1000  # bytes of RSS growth during a 1 GiB upload


@dataclass
class Series:
    """Throughputs of one measurement over the rounds, from seconds per transfer."""

    label: str
    size: int  # bytes moved per round
    seconds: list[float] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [self.size / MIB / elapsed for elapsed in self.seconds]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


@dataclass
class Run:
    command: str
    started_at: str
    size: int
    rounds: int
    machine: dict[str, str]
    versions: dict[str, str]
    nginx: Series
    binstore_download: Series
    hashlib: Series
    binstore_upload: Series
    chunked_upload: Series
    storage_only: Series
    rss_growth: list[int]  # bytes, one entry per upload, in the order they ran
    storage_root: str


def _verdict(met: bool) -> str:
    return "yes" if met else "**no**"


def _rates(series: Series) -> str:
    return ", ".join(f"{rate:.0f}" for rate in series.rates)


def render(run: Run) -> str:
    download_ratio = run.binstore_download.median / run.nginx.median
    upload_ratio = run.binstore_upload.median / run.hashlib.median
    disk_ratio = run.storage_only.median / run.hashlib.median
    peak_rss = max(run.rss_growth)
    full_size = run.size >= 1024**3

    lines = [
        "# Binstore benchmark",
        "",
        f"Written by `{run.command}` on {run.started_at}. Each figure is the median of "
        f"{run.rounds} rounds over one file of {run.size} bytes ({run.size / MIB:.0f} MiB) "
        "of random data; the per-round figures follow in the table.",
        "",
        "## Machine",
        "",
        *[f"- {name}: {value}" for name, value in run.machine.items()],
        "",
        "## Versions",
        "",
        *[f"- {name}: {value}" for name, value in run.versions.items()],
        "",
        "## Throughput (MiB/s)",
        "",
        "| measurement | per round | median |",
        "| --- | --- | --- |",
    ]
    for series in (
        run.nginx,
        run.binstore_download,
        run.hashlib,
        run.binstore_upload,
        run.chunked_upload,
        run.storage_only,
    ):
        lines.append(f"| {series.label} | {_rates(series)} | {series.median:.0f} |")

    lines += [
        "",
        "## Targets",
        "",
        "| target | measured | required | met |",
        "| --- | --- | --- | --- |",
        f"| download throughput, binstore / nginx | {download_ratio:.2f} × "
        f"| ≥ {DOWNLOAD_TARGET} × | {_verdict(download_ratio >= DOWNLOAD_TARGET)} |",
        f"| upload throughput with sha256 checksum, binstore / hashlib sha256 "
        f"| {upload_ratio:.2f} × | ≥ {UPLOAD_TARGET} × "
        f"| {_verdict(upload_ratio >= UPLOAD_TARGET)} |",
        f"| peak RSS growth of binstore during an upload | {peak_rss / 1e6:.1f} MB "
        f"(uploads: {', '.join(f'{growth / 1e6:.1f}' for growth in run.rss_growth)}) "
        f"| < {RSS_TARGET / 1e6:.0f} MB | {_verdict(peak_rss < RSS_TARGET)} |",
        "",
        f"Binstore's storage code alone (write, early writeback, fsync and rename of the same "
        f"file, without network and hashing) reached {disk_ratio:.2f} × hashlib's throughput "
        "on this disk.",
        "",
    ]
    if not full_size:
        lines += [
            f"This run used {run.size / MIB:.0f} MiB, not the 1 GiB the targets are set for, "
            "so its figures only show that the harness works.",
            "",
        ]
    missed = _missed_targets(run, download_ratio, upload_ratio, disk_ratio, peak_rss)
    if missed:
        lines += ["## Missed targets", "", *missed, ""]
    lines += _method(run)
    return "\n".join(lines)


def _missed_targets(
    run: Run, download_ratio: float, upload_ratio: float, disk_ratio: float, peak_rss: int
) -> list[str]:
    missed = []
    if download_ratio < DOWNLOAD_TARGET:
        missed.append(
            f"- Download: {download_ratio:.2f} × nginx, "
            f"{(1 - download_ratio / DOWNLOAD_TARGET) * 100:.0f} % short of {DOWNLOAD_TARGET} ×."
        )
    if upload_ratio < UPLOAD_TARGET:
        bound = (
            " The storage code alone was itself below the target on this disk."
            if disk_ratio < UPLOAD_TARGET
            else ""
        )
        missed.append(
            f"- Upload: {upload_ratio:.2f} × hashlib, "
            f"{(1 - upload_ratio / UPLOAD_TARGET) * 100:.0f} % short of {UPLOAD_TARGET} ×. "
            "Binstore runs the same hashlib sha256 over every byte and on top copies each "
            "byte from the socket, copies it into the page cache and writes it to disk, while "
            "curl, the data service, PostgreSQL and RabbitMQ use the same cores. The upload "
            f"reached {run.binstore_upload.median / run.storage_only.median * 100:.0f} % of the "
            f"storage code's rate alone.{bound}"
        )
    if peak_rss >= RSS_TARGET:
        missed.append(f"- RSS growth: {peak_rss / 1e6:.1f} MB, over {RSS_TARGET / 1e6:.0f} MB.")
    return missed


def _method(run: Run) -> list[str]:
    return [
        "## How it was measured",
        "",
        "- One client, curl, for every transfer, over loopback; curl's `time_total` "
        "(connection start to last byte) gives each transfer's time.",
        "- Download: nginx (its own instance, one worker, `sendfile on`, `tcp_nopush off`, "
        "the faster setting over loopback here) and binstore serve the same stored blob, "
        "from the page cache, in alternating order each round.",
        "- Upload: `curl --upload-file` to a fresh upload target of a provider whose declared "
        "checksum is the file's sha256, so binstore receives, hashes, verifies, writes, fsyncs, "
        "renames and records the file through the data service, as for a real publish.",
        "- Each round uploads twice, with `Content-Length` and with a chunked body. The "
        "upload target is checked against the first; the RSS figure covers both.",
        "- hashlib: sha256 of the same file read from the page cache in 1 MiB steps by the "
        "benchmark's own process, in the round of each upload.",
        "- Storage code alone: the same file stored through binstore's `LocalStorage` by the "
        "benchmark's process, in the working directory "
        f"({run.storage_root}, on the file system of the blobs); shown to separate the disk "
        "from the rest of binstore.",
        "- RSS: the binstore process's peak resident set during the upload (VmHWM, reset "
        "before each upload through /proc/PID/clear_refs) minus its resident set before it.",
        "- The client, binstore, the data service, PostgreSQL and RabbitMQ share the machine's "
        "cores, so other load on it moves the figures; the load averages above show it.",
        "",
    ]
