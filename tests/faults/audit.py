"""The database audit that ends every fault scenario (and the integration tests that fit).

What the app promises, checked against the tables after the fault:

- every accepted request is stored once and reached a final status; nothing else was
  stored (a retried submission did not store its texts twice);
- nothing is left ``running``, and no final row still holds a claim, a lease or a due time;
- each success has exactly one set of scores (ranks 0 to n-1, the first the stored top
  label); a failure or a cancellation has none;
- every final top-level request had its signal sent (``classification_succeeded`` or
  ``..._failed``, as the test app's receivers log it, never the wrong one) and the outbox
  holds nothing: at least once always, exactly once where no process died between its
  commit and the end of the signal's delivery;
- every threshold rule that a result reaches fired exactly once, its action ran to an end
  (``ok`` or ``error``), and no other rule fired.
"""

import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Max, Min

from django_textclass.content.registry import site
from django_textclass.models import (
    ClassificationRequest,
    ClassificationScore,
    Notification,
    RuleFiring,
    Status,
)
from django_textclass.models.status import TERMINAL_STATUSES
from django_textclass.services.outcomes import load_sources
from tests.testapp.models import SignalLog

#: Signals were sent exactly once per result (no process died while sending them).
ONCE = "once"
#: At least once: a process may have died after sending a signal, before its outbox row
#: was deleted; the sweep then sends it again (docs/reliability.md says so).
AT_LEAST_ONCE = "at least once"

_SHOWN = 10  # offending rows named in a failure message


@dataclass
class Audit:
    """What the audit counted; scenarios put it in their figures."""

    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    signals_repeated: int = 0
    rule_firings: int = 0

    def as_dict(self):
        return asdict(self)


def audit(accepted, *, signals=ONCE, only=True, settle=15.0):
    """Check the database after a scenario; fail the test with what is wrong.

    A result's signals are sent right after its commit, so the audit first gives the live
    processes up to ``settle`` seconds to empty the outbox; what is still owed then is
    reported (a scenario that killed a process sends what it owed first, see
    :func:`tests.faults.rig.deliver_owed_signals`).

    Args:
        accepted: the requests the app accepted (rows, primary keys or public uuids), each
            once. Requests of split texts count through their parent.
        signals: :data:`ONCE` or :data:`AT_LEAST_ONCE` (for scenarios that kill a process
            that may be sending signals).
        only: also check that the table holds no other top-level request.

    Returns:
        An :class:`Audit` with the counts.
    """
    problems = []
    deadline = time.monotonic() + settle
    while Notification.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = _accepted_rows(accepted, problems, only)
    _check_final(problems)
    _check_scores(problems)
    repeated = _check_signals(problems, signals)
    firings = _check_rules(problems)
    if problems:
        raise AssertionError("the audit found:\n- " + "\n- ".join(problems))
    statuses = Counter(status for _, status in rows)
    return Audit(
        requests=len(rows),
        succeeded=statuses[Status.SUCCEEDED],
        failed=statuses[Status.FAILED],
        cancelled=statuses[Status.CANCELLED],
        signals_repeated=repeated,
        rule_firings=firings,
    )


def _accepted_rows(accepted, problems, only):
    """The accepted requests as ``(pk, status)``; each must be stored once, and nothing else."""
    keys = [_key(item) for item in accepted]
    if len(set(keys)) != len(keys):
        problems.append(f"{len(keys) - len(set(keys))} request(s) accepted more than once")
    field = "uuid" if keys and isinstance(keys[0], uuid.UUID) else "pk"
    rows = []
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        rows += ClassificationRequest.objects.filter(**{f"{field}__in": chunk}).values_list(
            field, "pk", "status"
        )
    found = {key for key, _, _ in rows}
    lost = [key for key in keys if key not in found]
    if lost:
        problems.append(f"{len(lost)} accepted request(s) are not stored: {lost[:_SHOWN]}")
    if only:
        stored = ClassificationRequest.objects.filter(parent__isnull=True).count()
        if stored != len(set(keys)):
            problems.append(
                f"the table holds {stored} top-level requests for {len(set(keys))} accepted"
            )
    return [(pk, status) for _, pk, status in rows]


def _key(item):
    """A primary key (int) or a public id (UUID) from a row, a pk, or a uuid (or its text)."""
    if isinstance(item, ClassificationRequest):
        return item.pk
    if isinstance(item, int):
        return item
    return uuid.UUID(str(item))


def _check_final(problems):
    """Nothing unfinished anywhere in the table, and no final row still holds a claim."""
    unfinished = ClassificationRequest.objects.exclude(status__in=TERMINAL_STATUSES)
    counts = dict(unfinished.values_list("status").annotate(n=Count("pk")).order_by())
    if counts:
        sample = list(unfinished.values_list("pk", "status", "attempts", "error_code")[:_SHOWN])
        problems.append(f"requests not final: {counts}; e.g. {sample}")
    held = ClassificationRequest.objects.filter(status__in=TERMINAL_STATUSES).exclude(
        claim_token=None, lease_expires_at=None, next_attempt_at=None
    )
    if held.exists():
        problems.append(
            f"{held.count()} final request(s) still hold a claim, lease or due "
            f"time: {list(held.values_list('pk', flat=True)[:_SHOWN])}"
        )
    unstamped = ClassificationRequest.objects.filter(status__in=TERMINAL_STATUSES, finished_at=None)
    if unstamped.exists():
        problems.append(f"{unstamped.count()} final request(s) without finished_at")


def _check_scores(problems):
    """One set of scores per success (ranks 0..n-1, the top one stored), none otherwise."""
    sets = {
        request_id: (n, low, high)
        for request_id, n, low, high in ClassificationScore.objects.values("request_id")
        .annotate(n=Count("pk"), low=Min("rank"), high=Max("rank"))
        .values_list("request_id", "n", "low", "high")
        .order_by()
    }
    succeeded = dict(
        ClassificationRequest.objects.filter(status=Status.SUCCEEDED).values_list("pk", "top_label")
    )
    missing = [pk for pk in succeeded if pk not in sets]
    broken = [
        pk for pk, (n, low, high) in sets.items() if pk in succeeded and (low != 0 or high != n - 1)
    ]
    stray = [pk for pk in sets if pk not in succeeded]
    if missing:
        problems.append(f"{len(missing)} success(es) without scores: {missing[:_SHOWN]}")
    if broken:
        problems.append(
            f"{len(broken)} success(es) whose scores are not one ranking: {broken[:_SHOWN]}"
        )
    if stray:
        problems.append(f"{len(stray)} request(s) not succeeded but with scores: {stray[:_SHOWN]}")
    tops = dict(
        ClassificationScore.objects.filter(rank=0, request_id__in=list(succeeded)).values_list(
            "request_id", "label"
        )
    )
    wrong = [pk for pk, label in succeeded.items() if pk in tops and tops[pk] != label]
    if wrong:
        problems.append(
            f"{len(wrong)} success(es) whose top label is not their rank 0: {wrong[:_SHOWN]}"
        )


def _check_signals(problems, signals):
    """Each final top-level request's signal sent, of its kind; the outbox empty.

    Returns:
        How many signals were sent more than once.
    """
    owed = Notification.objects.count()
    if owed:
        problems.append(f"{owed} signal(s) still owed in the outbox")
    final = dict(
        ClassificationRequest.objects.filter(parent__isnull=True).values_list("uuid", "status")
    )
    sent = Counter(SignalLog.objects.values_list("request_uuid", "kind"))
    kinds = {Status.SUCCEEDED: "succeeded", Status.FAILED: "failed"}
    never, wrong = [], []
    for public_id, status in final.items():
        kind = kinds.get(status)
        if kind is not None and not sent[(public_id, kind)]:
            never.append(public_id)
        others = [name for name in ("succeeded", "failed") if name != kind]
        if any(sent[(public_id, name)] for name in others):
            wrong.append(public_id)
    repeated = [key for key, n in sent.items() if n > 1]
    if never:
        problems.append(
            f"{len(never)} final request(s) whose signal was never sent: {never[:_SHOWN]}"
        )
    if wrong:
        problems.append(
            f"{len(wrong)} request(s) signalled with the wrong outcome: {wrong[:_SHOWN]}"
        )
    if repeated and signals == ONCE:
        problems.append(f"{len(repeated)} signal(s) sent more than once: {repeated[:_SHOWN]}")
    return len(repeated)


def _check_rules(problems):
    """Every rule a result reaches fired once; nothing else fired.

    Returns:
        The number of firings.
    """
    fired = Counter(RuleFiring.objects.values_list("rule", "request_uuid"))
    twice = [key for key, n in fired.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} rule(s) fired more than once: {twice[:_SHOWN]}")
    unfinished = RuleFiring.objects.filter(outcome=RuleFiring.Outcome.STARTED)
    if unfinished.exists():
        problems.append(
            f"{unfinished.count()} rule firing(s) whose action never finished "
            f"(outcome 'started'): "
            f"{list(unfinished.values_list('rule', 'request_uuid')[:_SHOWN])}"
        )
    expected = _rules_reached()
    missed = expected - set(fired)
    extra = set(fired) - expected
    if missed:
        problems.append(f"{len(missed)} rule firing(s) missing: {sorted(missed)[:_SHOWN]}")
    if extra:
        problems.append(
            f"{len(extra)} rule(s) fired that no result reached: {sorted(extra)[:_SHOWN]}"
        )
    return sum(fired.values())


def _rules_reached():
    """``{(rule name, request uuid)}`` of every rule a stored success reaches."""
    reached = set()
    succeeded = list(
        ClassificationRequest.objects.filter(status=Status.SUCCEEDED, parent__isnull=True)
        .exclude(content_type=None)
        .prefetch_related("scores")
    )
    sources = load_sources(succeeded)
    for request in succeeded:
        content_type = ContentType.objects.get_for_id(request.content_type_id)
        registration = site.for_content_type(content_type)
        if registration is None or (content_type.pk, request.object_id) not in sources:
            continue
        scores = {score.label: score.score for score in request.scores.all()}
        for rule in registration.rules:
            score = scores.get(rule.label)
            if score is not None and score >= rule.min_score and rule.applies_to(request):
                reached.add((rule.name, request.uuid))
    return reached
