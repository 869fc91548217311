"""The app's models: the classification history, its daily roll-up, the backends' pacing."""

from django_textclass.models.events import RequestEvent
from django_textclass.models.firings import RuleFiring
from django_textclass.models.history import (
    TERMINAL_STATUSES,
    ClassificationRequest,
    ClassificationScore,
    Status,
    text_hash,
)
from django_textclass.models.idempotency import IdempotencyKey
from django_textclass.models.outbox import Notification
from django_textclass.models.pacing import BackendPace
from django_textclass.models.recovery import SweepRun
from django_textclass.models.rollup import (
    RollupCount,
    RollupDay,
    RollupDirtyDay,
    RollupHistogram,
)

__all__ = [
    "TERMINAL_STATUSES",
    "BackendPace",
    "ClassificationRequest",
    "ClassificationScore",
    "IdempotencyKey",
    "Notification",
    "RollupCount",
    "RollupDay",
    "RollupDirtyDay",
    "RequestEvent",
    "RollupHistogram",
    "RuleFiring",
    "Status",
    "SweepRun",
    "text_hash",
]
