"""Single measurements: hashing, storing, transfers with curl, and peak RSS."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from services.binstore.storage import LocalStorage

READ_SIZE = 1024 * 1024  # bytes per read of the source file
RSS_SAMPLE_INTERVAL = 0.01  # seconds between samples of a process's resident set


def make_file(path: Path, size: int) -> None:
    """Write ``size`` random bytes to ``path``; random data defeats any compression on the way."""
    with open(path, "wb") as file:
        remaining = size
        while remaining:
            step = min(READ_SIZE, remaining)
            file.write(os.urandom(step))
            remaining -= step


def time_sha256(path: Path) -> tuple[float, str]:
    """Hash ``path`` with hashlib as a program would; return the seconds taken and the digest."""
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    digest = hashlib.sha256()
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as file:
        while count := file.readinto(buffer):
            digest.update(view[:count])
    return time.perf_counter() - start, digest.hexdigest()


def time_storage_write(source: Path, root: Path, digest: str) -> float:
    """Store ``source`` through binstore's local storage alone; return the seconds taken.

    This is binstore's disk path (write, early writeback, fsync, rename)
    without the network and without hashing, on the file system of ``root``.
    """
    storage = LocalStorage(root)
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    start = time.perf_counter()
    with open(source, "rb", buffering=0) as reader, storage.new_upload() as writer:
        while count := reader.readinto(buffer):
            writer.write(view[:count])
        writer.commit(digest)
    elapsed = time.perf_counter() - start
    shutil.rmtree(root)
    return elapsed


def curl_version() -> str:
    result = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True)
    return result.stdout.split()[1]


def curl(*args: str) -> tuple[float, int, str]:
    """Run curl; return the transfer's seconds, its HTTP status and the response body.

    curl reports the time from the start of the connection to the last byte.
    """
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--write-out", "\n%{http_code} %{time_total}", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    body, _, summary = result.stdout.rpartition("\n")
    status, seconds = summary.split()
    return float(seconds), int(status), body


def download(url: str) -> float:
    seconds, status, _ = curl("--output", "/dev/null", url)
    if status != 200:
        raise RuntimeError(f"download of {url} failed with HTTP status {status}")
    return seconds


def upload(url: str, path: Path, chunked: bool = False) -> tuple[float, str]:
    """PUT ``path`` to ``url``; return the seconds taken and the response body.

    A chunked upload sends no Content-Length, as a client streaming from a pipe does.
    """
    framing = ["--header", "Transfer-Encoding: chunked"] if chunked else []
    seconds, status, body = curl(*framing, "--upload-file", str(path), url)
    if status != 200:
        raise RuntimeError(f"upload to {url} failed with HTTP status {status}: {body}")
    return seconds, body


def _status_field(pid: int, field: str) -> int:
    """Return a ``/proc/<pid>/status`` field in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


class PeakRss:
    """Peak resident set growth of a process while a block runs.

    The kernel's high-water mark (VmHWM) is reset first through
    ``/proc/<pid>/clear_refs``, available since Linux 4.0. A sampling
    thread backs it up on kernels that refuse the reset.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = 0
        self.peak = 0
        self._sampling = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
        except OSError:
            pass
        self.baseline = _status_field(self.pid, "VmRSS")
        self.peak = self.baseline
        self._sampling = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._sampling = False
        assert self._thread is not None
        self._thread.join()
        self.peak = max(self.peak, _status_field(self.pid, "VmHWM"))

    @property
    def growth(self) -> int:
        """Bytes by which the resident set grew at its peak."""
        return self.peak - self.baseline

    def _sample(self) -> None:
        while self._sampling:
            self.peak = max(self.peak, _status_field(self.pid, "VmRSS"))
            time.sleep(RSS_SAMPLE_INTERVAL)
