"""A small, fully known history: the expected numbers are worked out by hand below."""

from datetime import datetime, timedelta, timezone

from django_textclass.models import ClassificationRequest, ClassificationScore, text_hash

MODEL = "acme/sentiment"
OTHER_MODEL = "acme/topics"
DAY1 = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
DAY2 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)

# (label, top_score): 6 POSITIVE, 3 NEGATIVE, 1 NEUTRAL -> shares 0.6 / 0.3 / 0.1.
SUCCEEDED = [
    ("POSITIVE", 0.05),
    ("POSITIVE", 0.1),
    ("POSITIVE", 0.15),
    ("POSITIVE", 0.55),
    ("POSITIVE", 0.95),
    ("POSITIVE", 1.0),
    ("NEGATIVE", 0.99),
    ("NEGATIVE", 0.5),
    ("NEGATIVE", 0.7),
    ("NEUTRAL", 0.31),
]
# Score bins [0, .1) [.1, .2) ... [.9, 1]: 0.05 | 0.1 0.15 | - | 0.31 | - | 0.55 0.5 | - | 0.7 | -
# | 0.95 1.0 0.99.
EXPECTED_HISTOGRAM = [1, 2, 0, 1, 0, 2, 0, 1, 0, 3]
# Latencies created -> finished: 100, 200, ..., 1000 ms. percentile_cont: p50 = 550,
# p90 = 900 + 0.1 * 100 = 910, p99 = 900 + 0.91 * 100 = 991.
EXPECTED_LATENCY = {"p50": 550.0, "p90": 910.0, "p99": 991.0}
# Backend calls 10, 20, ..., 100 ms: p50 = 55, p90 = 91, p99 = 99.1.
EXPECTED_BACKEND = {"p50": 55.0, "p90": 91.0, "p99": 99.1}


def make_request(**fields):
    """Create one request row directly (history as a worker would have left it)."""
    text = fields.pop("text", "some text")
    fields.setdefault("model_id", MODEL)
    fields.setdefault("backend", "default")
    return ClassificationRequest.objects.create(text=text, text_hash=text_hash(text), **fields)


def seed_known_history(owner=None):
    """Create the known data set; returns ``{name: request}`` for the rows tests poke at.

    Succeeded: 10 (first 6 created on DAY1, the rest on DAY2); failed 2, cancelled 1
    (finished); pending 1, running 1. One extra succeeded row of OTHER_MODEL.
    """
    rows = {}
    for i, (label, score) in enumerate(SUCCEEDED):
        created = (DAY1 if i < 6 else DAY2) + timedelta(minutes=i)
        row = make_request(
            text=f"text {i} {label.lower()}",
            status="succeeded",
            top_label=label,
            top_score=score,
            created_at=created,
            started_at=created,
            finished_at=created + timedelta(milliseconds=100 * (i + 1)),
            backend_ms=10 * (i + 1),
            attempts=1,
            owner=owner,
        )
        ClassificationScore.objects.create(request=row, rank=0, label=label, score=score)
        ClassificationScore.objects.create(request=row, rank=1, label="OTHER", score=1 - score)
        rows[f"succeeded{i}"] = row
    for i in range(2):
        rows[f"failed{i}"] = make_request(
            text=f"failed {i}",
            status="failed",
            created_at=DAY2,
            started_at=DAY2,
            finished_at=DAY2 + timedelta(seconds=1),
            attempts=4,
            error_code="http_500",
            error_message="server error",
            owner=owner,
        )
    rows["cancelled"] = make_request(
        text="cancelled",
        status="cancelled",
        created_at=DAY2,
        finished_at=DAY2,
        owner=owner,
    )
    rows["pending"] = make_request(text="pending", status="pending", created_at=DAY2)
    rows["running"] = make_request(text="running", status="running", created_at=DAY2, attempts=1)
    rows["other_model"] = make_request(
        text="other model",
        model_id=OTHER_MODEL,
        status="succeeded",
        top_label="SPORTS",
        top_score=0.8,
        created_at=DAY1,
        started_at=DAY1,
        finished_at=DAY1 + timedelta(seconds=5),
        backend_ms=500,
    )
    return rows
