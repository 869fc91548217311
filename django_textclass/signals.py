"""Signals the app sends when a classification reaches its final result.

Both are sent once per result, after the transaction that stored it commits, by
the process that stored it (usually a Celery worker, so connect your receivers in
code the worker imports too, e.g. your ``AppConfig.ready()``). They are sent with
``send_robust``: a receiver that raises is logged and never breaks the pipeline or
the other receivers.

They are sent for every top-level request, registered content or a plain
``classify()`` call alike; the chunks of a split text send nothing (their parent
sends once, with the combined result).

If the process dies between the commit and the send, the signal is lost: the
result itself is safe in the database.

Example::

    from django.dispatch import receiver
    from django_textclass.signals import classification_succeeded

    @receiver(classification_succeeded)
    def on_result(sender, request, source, labels, **kwargs):
        if source is not None and request.top_label == "NEGATIVE":
            ...
"""

from django.dispatch import Signal

#: Sent when a request succeeded. ``sender`` is
#: :class:`~django_textclass.models.ClassificationRequest`. Arguments:
#:
#: * ``request``: the :class:`~django_textclass.models.ClassificationRequest`
#:   (status ``succeeded``; ``top_label``, ``top_score`` set).
#: * ``source``: the object the text came from (registered content, or
#:   ``classify(..., source=obj)``), or None (no source, or it was deleted).
#: * ``labels``: the whole ranking, best first: ``[{"label": ..., "score": ...}, ...]``.
classification_succeeded = Signal()

#: Sent when a request failed for good (no retries left, or a permanent error;
#: a split text whose chunk failed). ``sender`` is
#: :class:`~django_textclass.models.ClassificationRequest`. Arguments:
#:
#: * ``request``: the request (status ``failed``).
#: * ``source``: as for :data:`classification_succeeded`.
#: * ``error_code``: the stored code, e.g. ``http_401``, ``retries_exhausted``,
#:   ``lease_expired``, ``chunk_failed``.
#: * ``error_message``: the stored message (never the token or the text).
classification_failed = Signal()
