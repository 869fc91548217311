"""Wake-up calls to the workers: the only place the app publishes Celery messages.

A message carries request ids, never text or secrets. Publishing never raises:
if the broker is unreachable the requests stay pending in the database and the
periodic sweep sends them once the broker is back.
"""

import logging
from functools import partial

from celery import current_app
from django.db import transaction

from django_textclass.conf import app_settings

logger = logging.getLogger("django_textclass.dispatch")

#: Published by name, so this module never imports :mod:`django_textclass.tasks` (which
#: sits above the services that call it).
RUN_BATCH = "django_textclass.run_batch"

# Fail fast when the broker is down: the database row is the queue of record.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                        "interval_max": 0.2}


def on_commit(ids):
    """Send wake-ups for ``ids`` once the current transaction commits."""
    if ids:
        transaction.on_commit(partial(send, list(ids)))


def send(ids, countdown=None):
    """Publish ``run_batch`` messages for ``ids`` now, in chunks of ``BATCH_SIZE``.

    Returns:
        The number of messages published (0 when the broker refused them).
    """
    size = max(1, app_settings.BATCH_SIZE)
    options = {"retry_policy": PUBLISH_RETRY_POLICY}
    if app_settings.QUEUE:
        options["queue"] = app_settings.QUEUE
    if countdown:
        options["countdown"] = max(0.0, countdown)
    sent = 0
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        try:
            current_app.send_task(RUN_BATCH, args=[chunk], **options)
        except Exception as exc:  # noqa: BLE001 - any broker failure must not reach the caller
            logger.warning(
                "Could not publish a wake-up for %d request(s) (%s: %s); "
                "the sweep will send them.", len(chunk), type(exc).__name__, exc,
            )
            return sent
        sent += 1
    return sent
