"""Run the binstore benchmark: ``python -m bench.binstore [--size BYTES] [--rounds N]``.

It needs PostgreSQL and RabbitMQ (with its management API) as the tests do,
Debian's nginx and curl. It starts its own nginx, data and binstore on
loopback ports, and removes its database, vhost and files at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from services.toolkit.crypto import DOWNLOAD_PURPOSE, sign

from . import measure
from .environment import ROOT, START_TIMEOUT, Nginx, PrivateAtlas
from .report import Run, Series, render

DEFAULT_SIZE = 1024**3  # bytes
DEFAULT_ROUNDS = 5
DEFAULT_OUTPUT = ROOT / "bench" / "results-binstore.md"


def parse_size(text: str) -> int:
    units = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text.removesuffix(suffix)) * factor)
    return int(text)


def machine_facts() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    return {
        "cores": str(os.cpu_count()),
        "processor": model,
        "memory": f"{memory_kib / 1024**2:.1f} GiB",
        "kernel": platform.release(),
    }


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def software_versions() -> dict[str, str]:
    return {
        "Python": platform.python_version(),
        "nginx": Nginx.version(),
        "curl": measure.curl_version(),
        "eventlet": version("eventlet"),
        "nameko": version("nameko"),
        "werkzeug": version("werkzeug"),
    }


class Publisher:
    """Creates the provider the uploads go to, through the data service's RPC."""

    def __init__(self, atlas: PrivateAtlas, checksum: str) -> None:
        from nameko.standalone.rpc import ClusterRpcProxy

        self.proxy = ClusterRpcProxy(atlas.config(), timeout=30)
        self.data = self.proxy.start().data
        self._wait_for_data()
        self.username = "bench"
        self.data.create_user(self.username, None, None)
        token = self.data.issue_token(self.username, "benchmark")["token"]
        self.actor = self.data.authenticate(token)["actor"]
        self.data.create_box(self.actor, {"username": self.username, "name": "big"})
        self.data.create_version(
            self.actor, self.username, "big", {"version": {"version": "1.0.0"}}
        )
        self.data.create_provider(
            self.actor,
            self.username,
            "big",
            "1.0.0",
            {"provider": {"name": "libvirt", "checksum_type": "sha256", "checksum": checksum}},
        )

    def _wait_for_data(self) -> None:
        from nameko.exceptions import UnknownService

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.data.ping()
                return
            except UnknownService:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def upload_token(self) -> str:
        target = self.data.create_upload_target(
            self.actor, self.username, "big", "1.0.0", "libvirt"
        )
        return str(target["token"])

    def close(self) -> None:
        self.proxy.stop()


def run_benchmark(args: argparse.Namespace, workdir: Path) -> Run:
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = machine_facts()
    machine["load average before (1, 5, 15 min)"] = load_average()
    versions = software_versions()

    source = workdir / "box.bin"
    print(f"writing {args.size} random bytes to {source}", flush=True)
    measure.make_file(source, args.size)
    _, digest = measure.time_sha256(source)

    atlas = PrivateAtlas(workdir, args.postgres_url, args.amqp_url, args.rabbit_api)
    served = workdir / "www"
    served.mkdir()
    nginx = Nginx(workdir / "nginx", served)
    hashlib = Series("sha256 with hashlib", args.size)
    uploads = Series("upload with sha256 checksum, binstore", args.size)
    chunked_uploads = Series("the same upload with a chunked body, binstore", args.size)
    storage_only = Series("binstore's storage code alone, no network or hashing", args.size)
    nginx_series = Series("download, nginx sendfile", args.size)
    binstore_series = Series("download, binstore", args.size)
    rss_growth: list[int] = []
    try:
        atlas.start()
        nginx.start()
        publisher = Publisher(atlas, digest)
        try:
            for round_number in range(1, args.rounds + 1):
                print(f"upload round {round_number}", flush=True)
                hashlib.seconds.append(measure.time_sha256(source)[0])
                storage_only.seconds.append(
                    measure.time_storage_write(source, workdir / "disk-check", digest)
                )
                for series, chunked in ((uploads, False), (chunked_uploads, True)):
                    url = f"{atlas.binstore_url}/uploads/{publisher.upload_token()}"
                    with measure.PeakRss(atlas.binstore_pid) as rss:
                        seconds, body = measure.upload(url, source, chunked)
                    if json.loads(body)["sha256"] != digest:
                        raise RuntimeError(f"binstore stored the upload as {body}, not {digest}")
                    series.seconds.append(seconds)
                    rss_growth.append(rss.growth)
        finally:
            publisher.close()

        blob = atlas.storage_root / "sha256" / digest[:2] / digest[2:4] / digest
        (served / "box.bin").symlink_to(blob)
        # Uploads leave little of the blob in the page cache; both servers read it from there.
        measure.time_sha256(blob)
        token = sign(atlas.secret_key.encode(), DOWNLOAD_PURPOSE, digest, 3600)
        binstore_url = f"{atlas.binstore_url}/blobs/{digest}?token={token}"
        for round_number in range(1, args.rounds + 1):
            print(f"download round {round_number}", flush=True)
            pairs = [(nginx_series, nginx.url("box.bin")), (binstore_series, binstore_url)]
            if round_number % 2 == 0:
                pairs.reverse()
            for series, url in pairs:
                series.seconds.append(measure.download(url))
    finally:
        nginx.stop()
        atlas.stop()

    machine["load average after (1, 5, 15 min)"] = load_average()
    return Run(
        command=" ".join(["python -m bench.binstore", shlex.join(args.argv)]).strip(),
        started_at=started_at,
        size=args.size,
        rounds=args.rounds,
        machine=machine,
        versions=versions,
        nginx=nginx_series,
        binstore_download=binstore_series,
        hashlib=hashlib,
        binstore_upload=uploads,
        chunked_upload=chunked_uploads,
        storage_only=storage_only,
        rss_growth=rss_growth,
        storage_root=str(workdir),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.binstore",
        description="Measure binstore beside nginx (downloads) and hashlib (uploads).",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=DEFAULT_SIZE,
        help="bytes in the test file; KiB, MiB and GiB suffixes work (default 1GiB)",
    )
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds of each measurement"
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="path of the Markdown report"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="directory for the file, blobs and nginx (default: a temporary one)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "ATLAS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL server to create the benchmark's database on",
    )
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("ATLAS_TEST_AMQP_URL", "pyamqp://guest:guest@127.0.0.1:5672/"),
        help="RabbitMQ broker to create the benchmark's vhost on",
    )
    parser.add_argument(
        "--rabbit-api",
        default=os.environ.get("ATLAS_TEST_RABBIT_API_URL", "http://guest:guest@127.0.0.1:15672"),
        help="RabbitMQ management API that creates and deletes the vhost",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="binstore-bench-", dir=args.workdir))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="binstore-bench-"))
    try:
        run = run_benchmark(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.output.write_text(render(run))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
