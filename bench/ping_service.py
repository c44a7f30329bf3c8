"""A bare nameko service with one RPC method, the baseline for RPC latency.

Run as ``python -m bench.ping_service AMQP_URI``.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from nameko.rpc import rpc  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402


class BenchPing:
    name = "bench_ping"

    @rpc
    def ping(self) -> str:
        return "pong"


def main() -> None:
    runner = ServiceRunner({"AMQP_URI": sys.argv[1], "serializer": "json"})
    runner.add_service(BenchPing)
    runner.start()
    runner.wait()


if __name__ == "__main__":
    main()
