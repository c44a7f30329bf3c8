"""Fixes to nameko 2.14 so that a broker restart does not kill a service.

When the broker goes away while a worker finishes, nameko lets the error
escape into the worker and kills the whole container:

- ``QueueConsumer.ack_message`` and ``requeue_message`` ignore amqp's
  ``ConnectionError`` but not socket errors. Skipping the settlement is
  safe: the broker returns every unacknowledged message of a closed
  connection to its queue, and the consumer reconnects.
- ``Responder.send_response`` lets a failed publish of an RPC reply
  escape. Dropping the reply is safe: the caller's wait times out
  (``TimedRpcProxy``) as it would for any lost message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.messaging import QueueConsumer
from nameko.rpc import Responder

log = logging.getLogger(__name__)

_PATCHED = "_atlas_survives_broker_loss"


def _tolerant(method: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    def call(self: Any, message: Any) -> None:
        try:
            method(self, message)
        except OSError as exc:
            log.warning("broker connection lost before a message was settled: %s", exc)

    return call


def _reply_or_drop(send_response: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: Any, result: Any, exc_info: Any) -> Any:
        try:
            return send_response(self, result, exc_info)
        except (OSError, OperationalError, AmqpConnectionError) as exc:
            log.warning("reply to an RPC call was lost with the broker connection: %s", exc)
            return result, exc_info

    return call


def survive_broker_loss() -> None:
    """Patch nameko once per process; later calls do nothing."""
    if getattr(QueueConsumer, _PATCHED, False):
        return
    QueueConsumer.ack_message = _tolerant(QueueConsumer.ack_message)
    QueueConsumer.requeue_message = _tolerant(QueueConsumer.requeue_message)
    Responder.send_response = _reply_or_drop(Responder.send_response)
    setattr(QueueConsumer, _PATCHED, True)
