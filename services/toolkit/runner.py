"""Run one Atlas service in this process: ``python -m services.toolkit.runner NAME``.

eventlet's monkey patching must happen before anything else imports the
socket module, so this module applies it first; it also makes psycopg2
cooperative. Keeping it here keeps eventlet out of the services' own code.

SIGTERM and SIGINT stop the services gracefully, as
``services.toolkit.shutdown`` describes, and the process then exits with 0.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import logging.config  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from services.toolkit.config import load_config  # noqa: E402
from services.toolkit.container import CONTAINER_CLASS, CONTAINER_CLASS_KEY  # noqa: E402
from services.toolkit.logs import set_process_service  # noqa: E402
from services.toolkit.shutdown import GracefulStop, grace_period  # noqa: E402

log = logging.getLogger("atlas.runner")

SERVICES = {
    "data": "services.data.service:DataService",
    "binstore": "services.binstore.service:BinstoreService",
    "gateway": "gateway.service:GatewayService",
    "jobs": "services.jobs.service:JobsService",
    "workers": "services.workers.service:WorkersService",
}


def import_service(name: str) -> Any:
    """Import a service by its name in SERVICES or by ``module:Class``."""
    module_name, _, class_name = SERVICES.get(name, name).partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def run(names: list[str], config: dict[str, Any]) -> None:
    config.setdefault(CONTAINER_CLASS_KEY, CONTAINER_CLASS)
    runner = ServiceRunner(config)
    set_process_service(names[0] if len(names) == 1 else None)
    for name in names:
        runner.add_service(import_service(name))

    graceful_stop = GracefulStop(runner, grace_period(config))
    graceful_stop.install()
    runner.start()
    # The objects made while starting live as long as the process. Frozen,
    # they are left out of the collector's full passes, which otherwise walk
    # them all and pause every request in flight.
    gc.freeze()
    log.info("started %s", ", ".join(names))
    runner.wait()
    graceful_stop.wait()
    log.info("stopped %s", ", ".join(names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Atlas services in this process.")
    parser.add_argument(
        "services",
        nargs="+",
        help=f"services to run: {', '.join(sorted(SERVICES))}, or module:Class of another",
    )
    parser.add_argument(
        "--config", help="path of config.yaml (default: ATLAS_CONFIG or ./config.yaml)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.services if name not in SERVICES and ":" not in name]
    if unknown:
        parser.error(f"unknown service {unknown[0]!r}; choose from {', '.join(sorted(SERVICES))}")
    config = load_config(args.config)
    if "LOGGING" in config:
        logging.config.dictConfig(config["LOGGING"])
    run(args.services, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
