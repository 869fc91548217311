"""Rows of a known pipeline state, for the health tests."""

from datetime import timedelta

from django.utils import timezone

from django_textclass.models import BackendPace, ClassificationRequest, SweepRun, text_hash

NOW = timezone.now


def request(status, *, age=0.0, due_in=None, error_code="", model_id="acme/sentiment", **fields):
    """One request created ``age`` seconds ago, in ``status``."""
    created = timezone.now() - timedelta(seconds=age)
    text = fields.pop("text", f"{status} {age}")
    if status == "pending":
        fields.setdefault(
            "next_attempt_at",
            created if due_in is None else timezone.now() + timedelta(seconds=due_in),
        )
    return ClassificationRequest.objects.create(
        text=text,
        text_hash=text_hash(text),
        status=status,
        created_at=created,
        model_id=model_id,
        error_code=error_code,
        backend="default",
        **fields,
    )


def swept(seconds_ago):
    """The sweep last ran ``seconds_ago``."""
    SweepRun.objects.update_or_create(
        name="sweep", defaults={"last_run_at": timezone.now() - timedelta(seconds=seconds_ago)}
    )


def open_circuit(alias="default", *, opened=1, failures=5, last_error="http_503"):
    """The backend's circuit is open for another minute."""
    return BackendPace.objects.create(
        backend=alias,
        circuit=BackendPace.Circuit.OPEN,
        opened=opened,
        failures=failures,
        last_error=last_error,
        reason="circuit_open",
        not_before=timezone.now() + timedelta(seconds=60),
    )
