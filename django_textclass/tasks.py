"""Celery tasks: thin envelopes around :mod:`django_textclass.services`.

They take request ids only (never text or tokens), acknowledge late (a worker
killed mid-run leaves its message to be delivered again), and are safe to run
twice: the claim decides which run owns a request.
"""

from celery import shared_task

from django_textclass import services


@shared_task(
    name="django_textclass.run_batch", acks_late=True, ignore_result=True, serializer="json"
)
def run_batch(request_ids):
    """Classify the pending requests among ``request_ids``. Returns how many were claimed.

    Then, if no process swept for ``SWEEP_INTERVAL``, sweep: beat's own sweep message may be
    waiting behind a backlog on this very queue.
    """
    claimed = services.process(request_ids)
    services.sweep_if_due()
    return claimed


@shared_task(name="django_textclass.sweep", ignore_result=True, serializer="json")
def sweep():
    """Re-dispatch stuck requests; schedule it with Celery beat (see docs/pipeline.md)."""
    return services.sweep()


@shared_task(name="django_textclass.rollup", ignore_result=True, serializer="json")
def roll_up(verify=False, max_days=31):
    """Sum closed days into the dashboard's roll-up; schedule it with beat (docs/admin.md).

    With ``verify``, first compare the rolled days with the table (a full scan: run
    that variant daily). Returns how many days were summed (at most ``max_days``).
    """
    from django_textclass import rollup

    if verify:
        rollup.verify()
    return rollup.roll(max_days=max_days)
