r"""Every state change of a classification request happens here.

Tasks, views, admin actions and commands call these functions; none of them
writes a status field itself. The life of a request::

    submit() -> pending --claim--> running --complete--> succeeded
                  ^                   |  \--fail------> failed
                  |                   |
                  +--- reschedule ----+   (transient error, attempts left)
    pending --cancel--> cancelled;  failed/cancelled --retry--> pending

A worker owns a running request through its ``claim_token``: every write after
the claim is guarded by it, so a run that lost its lease (and was replaced by
another) can never overwrite or duplicate results.
"""

from django_textclass.services.actions import (
    cancel,
    cancel_many,
    reclassify,
    rerun,
    retry,
    retry_many,
)
from django_textclass.services.recovery import sweep, sweep_if_due
from django_textclass.services.settling import complete, fail, reschedule, retry_delay
from django_textclass.services.submission import Item, submit, submit_many
from django_textclass.services.worker import claim, process
from django_textclass.types import validate_text  # re-exported: its old home

__all__ = [
    "Item",
    "cancel",
    "cancel_many",
    "claim",
    "complete",
    "fail",
    "process",
    "reclassify",
    "rerun",
    "reschedule",
    "retry",
    "retry_delay",
    "retry_many",
    "submit",
    "submit_many",
    "sweep",
    "sweep_if_due",
    "validate_text",
]
