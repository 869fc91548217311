"""The rows of one group a worker run sends: distinct texts, less cache hits and twins.

A run (:mod:`django_textclass.services.worker`) adds the rows it claims to a :class:`Work`;
rows whose text already has a stored answer are completed from it, rows whose text another
run is classifying follow that run's call, and the rest are kept by text until they are sent.
"""

import random
import time
from datetime import timedelta

from django.utils import timezone

from django_textclass.conf import app_settings
from django_textclass.models import ClassificationRequest
from django_textclass.services.settling import complete, hand_back
from django_textclass.types import LabelScore, Ranking

#: Seconds (from, to) a row waits for a twin another run is classifying, then looks again.
TWIN_WAIT = (0.5, 1.5)
#: Seconds a run keeps looking for the answers its followers need before it hands them back.
TWIN_PATIENCE = 1.0
#: Seconds between those looks (one index probe per text each).
TWIN_POLL = 0.05


class Work:
    """The rows of one group a run sends: its distinct texts, less cache hits and twins.

    Texts already sent by this run, or being classified by an earlier claim of another run,
    are not sent again: rows of such a text (followers) are answered from the stored result
    once the run's calls are done.
    """

    def __init__(self, token, alias, model_id, parameters, dedupe, *, revision=""):
        self.token, self.alias, self.model_id, self.parameters = (
            token,
            alias,
            model_id,
            parameters,
        )
        self.revision = revision
        self.dedupe = dedupe
        self.by_hash = {}
        self.sent = set()
        self.followers = []
        self.elsewhere = set()  # hashes of followers whose text another run is classifying
        self.rows_added = 0
        self.new_texts = 0

    @property
    def new_texts_share(self):
        """The share of added rows that brought a text to send (1.0 before any)."""
        return self.new_texts / self.rows_added if self.rows_added else 1.0

    def add(self, rows):
        """Take claimed rows: answer what the cache can, hand back twins, keep the rest."""
        before = len(self.by_hash)
        self.rows_added += len(rows)
        self.followers += [row for row in rows if row.text_hash in self.sent]
        rows = [row for row in rows if row.text_hash not in self.sent]
        known = [row for row in rows if row.text_hash in self.by_hash]
        rows = [row for row in rows if row.text_hash not in self.by_hash]
        if self.dedupe and rows:
            # Twins first, the cache second: a twin's answer stored between the two looks is
            # then seen by one of them (looked at the other way round, the cache before the
            # answer landed and the twins after, neither sees it and the text goes twice).
            rows, following = twins_in_flight(
                self.token, self.alias, self.model_id, self.parameters, rows, revision=self.revision
            )
            rows = answer_from_cache(
                self.token, self.alias, self.model_id, self.parameters, rows, revision=self.revision
            )
            self.followers += following
            self.elsewhere.update(row.text_hash for row in following)
        for row in known + rows:
            self.by_hash.setdefault(row.text_hash, []).append(row)
        self.new_texts += len(self.by_hash) - before

    def take(self, whole_batches_of=None):
        """The texts to send (each a list of its rows), now counted as sent.

        With ``whole_batches_of``, only as many as fill whole batches of that size; the
        rest stay for the next take.
        """
        hashes = list(self.by_hash)
        if whole_batches_of:
            hashes = hashes[: len(hashes) - len(hashes) % whole_batches_of]
        texts = [self.by_hash.pop(text_hash) for text_hash in hashes]
        self.sent.update(hashes)
        return texts

    def settle_followers(self, patience):
        """Answer the followers from their text's stored result, or hand them back.

        A text another run is classifying may still be out: its followers are looked up
        again every :data:`TWIN_POLL` seconds for at most ``patience`` seconds, then the
        rest wait like twins (no attempt spent) and are answered by a later run.
        """
        rest = self.followers
        give_up = time.monotonic() + patience
        while rest:
            rest = answer_from_cache(
                self.token, self.alias, self.model_id, self.parameters, rest, revision=self.revision
            )
            # This run's own calls are over: only another run's call may still answer.
            if (
                not any(row.text_hash in self.elsewhere for row in rest)
                or time.monotonic() + TWIN_POLL > give_up
            ):
                break
            time.sleep(TWIN_POLL)
        self.followers = []
        if rest:  # its call failed or was put off: the rows wait like twins
            until = timezone.now() + timedelta(seconds=random.uniform(*TWIN_WAIT))
            hand_back(self.token, rest, until, "twin_in_flight")


def answer_from_cache(token, alias, model_id, parameters, rows, *, revision=""):
    """Complete the rows whose text already has a fresh stored result; return the rest.

    Only a result of the same backend, model, revision and parameters answers: a key moved
    to a new model or revision never reuses the old one's answers.
    """
    ttl = app_settings.CACHE_TTL
    if ttl == 0:
        return rows
    since = None if ttl is None else timezone.now() - timedelta(seconds=ttl)
    hits = ClassificationRequest.objects.newest_answers(
        backend=alias,
        model_id=model_id,
        revision=revision,
        parameters=parameters,
        hashes={row.text_hash for row in rows},
        since=since,
    )
    cached = {hit.text_hash: hit for hit in hits}
    answered, rest = [], []
    for row in rows:
        hit = cached.get(row.text_hash)
        # A hash collision is astronomically unlikely; comparing the text makes it impossible.
        if hit is not None and hit.text == row.text:
            answered.append((row, ranking_of(hit), hit))
        else:
            rest.append(row)
    if answered:
        complete(
            token,
            [(row, ranking) for row, ranking, _ in answered],
            reused_from={row.pk: hit.pk for row, _, hit in answered},
        )
    return rest


def twins_in_flight(token, alias, model_id, parameters, rows, *, revision=""):
    """Split ``rows`` into those to send and those whose text an earlier claim is classifying.

    A twin (same text, backend, model, revision and parameters) running under another live claim
    will store the answer these rows need: they follow it (this run keeps them, and answers
    them from the stored result once it is there, see :meth:`Work.settle_followers`), so
    each text costs one call however the work is spread over messages, processes and hosts.
    A row follows only a twin claimed before it (claim time, then id), so of two runs that
    claim twins at once exactly one sends: each looks after its own claim committed, and
    both order the two claims the same way.

    Returns:
        ``(to_send, following)``.
    """
    now = timezone.now()
    busy = (
        ClassificationRequest.objects.in_flight(
            backend=alias,
            model_id=model_id,
            revision=revision,
            parameters=parameters,
            hashes={row.text_hash for row in rows},
            now=now,
        )
        .exclude(claim_token=token)
        .values_list("text_hash", "started_at", "pk")
    )
    earliest = {}
    for text_hash, started_at, pk in busy:
        earliest[text_hash] = min(earliest.get(text_hash, (started_at, pk)), (started_at, pk))
    if not earliest:
        return rows, []
    following = [
        row
        for row in rows
        if row.text_hash in earliest and earliest[row.text_hash] < (row.started_at, row.pk)
    ]
    later = {row.pk for row in following}
    return [row for row in rows if row.pk not in later], following


def ranking_of(answer):
    """The ranking of a row :meth:`~ClassificationRequest.objects.newest_answers` returned."""
    return Ranking(tuple(LabelScore(label, score) for label, score in answer.answer_scores))
