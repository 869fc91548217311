"""Threshold-rule actions and signal receivers for the content tests."""

import os
import signal
from pathlib import Path

from tests.testapp.models import SignalLog


def hide(obj, *, request, rule, score):
    """Hide a comment; saving only ``hidden`` must not classify it again."""
    obj.hidden = True
    obj.save(update_fields=["hidden"])


def explode(obj, *, request, rule, score):
    """An action that writes, then fails: its write must be rolled back."""
    obj.title = "changed by a failing action"
    obj.save(update_fields=["title"])
    raise RuntimeError("the action broke")


def log_succeeded(sender, request, source, labels, **kwargs):
    SignalLog.objects.create(
        kind="succeeded",
        request_uuid=request.uuid,
        object_id=request.object_id,
        has_source=source is not None,
        label=labels[0]["label"],
    )


def log_failed(sender, request, source, error_code, error_message, **kwargs):
    SignalLog.objects.create(
        kind="failed",
        request_uuid=request.uuid,
        object_id=request.object_id,
        has_source=source is not None,
        error_code=error_code,
    )


def die_on_signal(sender, request, **kwargs):
    """Kill this process (SIGKILL) on the first signal of each request whose text has a marker.

    Only in a worker started with ``TEXTCLASS_TEST_DIE_ON`` (the marker) and
    ``TEXTCLASS_TEST_DIE_FLAGS`` (a folder: a file named after the request is written just
    before, so each request's process dies once): a crash after the result's commit, before
    any receiver ran.
    """
    marker = os.environ.get("TEXTCLASS_TEST_DIE_ON")
    flags = os.environ.get("TEXTCLASS_TEST_DIE_FLAGS")
    if not marker or not flags or marker not in request.text:
        return
    flag = Path(flags) / str(request.pk)
    if flag.exists():
        return
    flag.write_text(request.model_id)
    os.kill(os.getpid(), signal.SIGKILL)
