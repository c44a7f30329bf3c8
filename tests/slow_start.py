"""A service whose start takes seconds, for tests of what happens while a service starts.

Its extensions start side by side, as every service's do: the operations
listener serves requests at once, the event consumer connects, and ``SlowStart``
keeps the container's start open for ``ATLAS_TEST_START_SECONDS`` seconds
(default 3), logging when it begins.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import eventlet
from nameko.events import BROADCAST, event_handler
from nameko.extensions import DependencyProvider

from services.toolkit.operations import ServiceOperations

log = logging.getLogger(__name__)

STARTING_MESSAGE = "slow start under way"


class SlowStart(DependencyProvider):
    def start(self) -> None:
        log.info(STARTING_MESSAGE)
        eventlet.sleep(float(os.environ.get("ATLAS_TEST_START_SECONDS", "3")))


class SlowStartService(ServiceOperations):
    name = "slow_start"

    slow_start = SlowStart()

    @event_handler("slow_start", "noticed", handler_type=BROADCAST, reliable_delivery=False)
    def notice(self, payload: Any) -> None:
        log.info("noticed %s", payload)
