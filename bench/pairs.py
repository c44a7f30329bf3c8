"""Each benchmark pair: Atlas and its peer measured back to back on one machine."""

from __future__ import annotations

import http.client
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.boxes import build_box
from tests.suite_process import ROOT, RunningSuite

from .seed import seed_boxes
from .tools import LoadResult, nginx, wrk


@dataclass
class Row:
    """One line of the results table: a measure of Atlas beside its peer's."""

    what: str
    atlas: str
    peer: str
    ratio: str
    target: str
    met: bool | None
    notes: list[str] = field(default_factory=list)


def publish_box(suite: RunningSuite, token: str, tag: str) -> None:
    """Publish a one-provider box through the API, as vagrant cloud publish does."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    api = suite.api_url + "/api/v1"
    username, name = tag.split("/")
    session.post(f"{api}/boxes", json={"username": username, "name": name}).raise_for_status()
    box = f"{api}/box/{tag}"
    session.post(f"{box}/versions", json={"version": {"version": "1.0.0"}}).raise_for_status()
    session.post(
        f"{box}/version/1.0.0/providers", json={"provider": {"name": "libvirt"}}
    ).raise_for_status()
    target = session.get(f"{box}/version/1.0.0/provider/libvirt/upload").json()
    requests.put(target["upload_path"], data=build_box(), timeout=60).raise_for_status()
    session.put(f"{box}/version/1.0.0/release").raise_for_status()


def wait_for_metadata(suite: RunningSuite, tag: str, timeout: float = 60) -> bytes:
    """Return the box's metadata once it lists a released version."""
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(f"{suite.api_url}/{tag}", timeout=10)
        if response.ok and response.json()["versions"]:
            return response.content
        if time.monotonic() > deadline:
            raise RuntimeError(f"metadata of {tag} never listed a version: {response.text}")
        time.sleep(0.2)


def metadata_pair(suite: RunningSuite, tag: str, seconds: float) -> Row:
    body = wait_for_metadata(suite, tag)
    docs = Path(tempfile.mkdtemp(prefix="atlas-bench-docs-"))
    target = docs / tag
    target.parent.mkdir(parents=True)
    target.write_bytes(body)

    atlas = wrk(suite.api_url, [f"/{tag}"], connections=16, seconds=seconds)
    with nginx(docs, "application/json") as nginx_url:
        peer = wrk(nginx_url, [f"/{tag}"], connections=16, seconds=seconds)

    met = atlas.requests_per_second >= 3000 and atlas.p99_ms <= 20
    return Row(
        what="box metadata GET, 16 connections (req/s; p50 / p99 ms)",
        atlas=_load(atlas),
        peer=f"nginx: {_load(peer)}",
        ratio=f"{atlas.requests_per_second / peer.requests_per_second:.2f} × nginx req/s",
        target="≥ 3,000 req/s, p99 ≤ 20 ms",
        met=met,
        notes=_errors(atlas),
    )


def _load(result: LoadResult) -> str:
    return f"{result.requests_per_second:,.0f} req/s; {result.p50_ms:.1f} / {result.p99_ms:.1f} ms"


def _errors(result: LoadResult) -> list[str]:
    if result.errors or result.non_2xx:
        return [f"{result.errors} socket errors, {result.non_2xx} non-2xx answers"]
    return []


def _latencies(call: Callable[[], Any], count: int) -> list[float]:
    for _ in range(min(100, count)):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rpc_pair(suite: RunningSuite, tag: str, count: int, seconds: float) -> Row:
    """Measure a box read through the gateway beside a bare nameko RPC ping, each sequential.

    Each side has its own protocol's lightest client: nameko's standalone
    proxy for the ping, wrk on one connection for the read. The same read
    from two Python clients in this process, and the data service's get_box
    RPC that serves it, go to the notes.
    """
    from nameko.standalone.rpc import ClusterRpcProxy

    ping_process = subprocess.Popen(
        [sys.executable, "-m", "bench.ping_service", suite.amqp_uri],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    session = requests.Session()
    path = f"/api/v1/box/{tag}"
    try:
        with ClusterRpcProxy({"AMQP_URI": suite.amqp_uri, "serializer": "json"}) as cluster:
            _wait_for_rpc(lambda: cluster.bench_ping.ping())
            ping = _latencies(lambda: cluster.bench_ping.ping(), count)
            gateway = wrk(suite.api_url, [path], connections=1, seconds=seconds)
            plain = _latencies(_keep_alive_get(suite.api_url, path), count)
            url = suite.api_url + path
            python = _latencies(lambda: session.get(url, timeout=10).raise_for_status(), count)
            # The call the gateway makes for that read, sent without the HTTP hop.
            username, name = tag.split("/")
            data = _latencies(lambda: cluster.data.get_box(None, username, name), count)
    finally:
        ping_process.terminate()
        ping_process.wait(timeout=10)

    ping_p50, plain_p50 = statistics.median(ping), statistics.median(plain)
    python_p50, data_p50 = statistics.median(python), statistics.median(data)
    return Row(
        what="gateway → data → PostgreSQL read, sequential (p50 / p99 ms)",
        atlas=f"{gateway.p50_ms:.2f} / {gateway.p99_ms:.2f} ms (wrk, 1 connection)",
        peer=f"bare nameko RPC ping: {ping_p50:.2f} / {_percentile(ping, 0.99):.2f} ms",
        ratio=f"{gateway.p50_ms / ping_p50:.2f} × ping p50",
        target="p50 ≤ 2 × ping",
        met=gateway.p50_ms <= 2 * ping_p50,
        notes=[
            "the same read from Python's http.client on one connection, in the ping client's "
            f"process (eventlet-patched): {plain_p50:.2f} / {_percentile(plain, 0.99):.2f} ms, "
            f"{plain_p50 / ping_p50:.2f} × ping p50",
            "the same read from Python's requests client, in that process: "
            f"{python_p50:.2f} / {_percentile(python, 0.99):.2f} ms, "
            f"{python_p50 / ping_p50:.2f} × ping p50",
            "the data service's get_box RPC alone, the call behind that read, sent from the "
            f"ping's client: {data_p50:.2f} / {_percentile(data, 0.99):.2f} ms, "
            f"{data_p50 / ping_p50:.2f} × ping p50",
            *_errors(gateway),
        ],
    )


def _keep_alive_get(base_url: str, path: str) -> Callable[[], None]:
    """Return a function that GETs ``path`` on one kept-alive connection and reads the body."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)

    def get() -> None:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} returned {response.status}")

    return get


def _wait_for_rpc(call: Callable[[], Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            call()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def scale_pair(suite: RunningSuite, owner: str, small: int, large: int, seconds: float) -> Row:
    """Metadata p95 over random boxes with ``small`` and then ``large`` boxes stored."""
    paths = seed_boxes(suite.database_url, owner, 0, small)
    at_small = wrk(suite.api_url, paths, connections=16, seconds=seconds)
    paths += seed_boxes(suite.database_url, owner, small, large - small)
    at_large = wrk(suite.api_url, paths, connections=16, seconds=seconds)

    growth = at_large.p95_ms / at_small.p95_ms
    return Row(
        what=f"box metadata p95 at {large:,} boxes vs {small:,} (uncached)",
        atlas=f"{at_large.p95_ms:.1f} ms at {large:,} ({at_large.requests_per_second:,.0f} req/s)",
        peer=f"{at_small.p95_ms:.1f} ms at {small:,} ({at_small.requests_per_second:,.0f} req/s)",
        ratio=f"{growth:.2f} × p95",
        target="≤ 1.5 ×",
        met=growth <= 1.5,
        notes=_errors(at_small) + _errors(at_large),
    )
