"""Load generators and peers the benchmarks run: wrk and a private nginx."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import requests

from tests.conftest import free_port

HERE = Path(__file__).resolve().parent


@dataclass
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    non_2xx: int


def wrk(base_url: str, paths: list[str], connections: int, seconds: float) -> LoadResult:
    """Load ``base_url`` with GETs of ``paths`` (picked at random) from wrk."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed; run: apt-get install -y wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(paths) + "\n")
    try:
        result = subprocess.run(
            [
                "wrk",
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                str(HERE / "report.lua"),
                base_url,
                "--",
                listing.name,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(listing.name)
    line = next(raw for raw in result.stdout.splitlines() if raw.startswith("{"))
    figures = json.loads(line)
    return LoadResult(
        requests_per_second=figures["requests"] / figures["duration_s"],
        p50_ms=figures["p50_ms"],
        p95_ms=figures["p95_ms"],
        p99_ms=figures["p99_ms"],
        errors=figures["errors"],
        non_2xx=figures["non_2xx"],
    )


NGINX_CONF = """\
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {docs};
        default_type {content_type};
    }}
}}
"""


@contextmanager
def nginx(docs: Path, content_type: str, workers: int = 1) -> Iterator[str]:
    """Serve ``docs`` from a private nginx on a loopback port; yield its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        raise RuntimeError("nginx is not installed; run: apt-get install -y nginx")
    root = Path(tempfile.mkdtemp(prefix="atlas-bench-nginx-"))
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=workers, root=root, port=port, docs=docs, content_type=content_type
        )
    )
    process = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                requests.get(url + "/", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def environment() -> dict[str, str]:
    """Return the facts that make figures comparable: machine, Python and versions."""
    nginx_version = subprocess.run(
        [shutil.which("nginx") or "/usr/sbin/nginx", "-v"], capture_output=True, text=True
    ).stderr.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {
        "cores": str(os.cpu_count()),
        "machine": f"{platform.machine()} {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "nameko": metadata.version("nameko"),
        "eventlet": metadata.version("eventlet"),
        "celery": metadata.version("celery"),
        "nginx": nginx_version.removeprefix("nginx version: "),
        "wrk": wrk_version.splitlines()[0] if wrk_version else "unknown",
    }
