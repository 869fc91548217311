"""Threshold-rule actions and signal receivers for the content tests."""

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
    SignalLog.objects.create(kind="succeeded", request_uuid=request.uuid,
                             object_id=request.object_id, has_source=source is not None,
                             label=labels[0]["label"])


def log_failed(sender, request, source, error_code, error_message, **kwargs):
    SignalLog.objects.create(kind="failed", request_uuid=request.uuid,
                             object_id=request.object_id, has_source=source is not None,
                             error_code=error_code)
