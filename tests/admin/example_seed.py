"""Prepare the example project for the browser test: migrate, seed history, log a user in.

Run as a script with the example project's settings (the browser test does this in a
subprocess, against a throw-away SQLite file named by ``DATABASE_URL``)::

    PYTHONPATH=example_project:. DJANGO_SETTINGS_MODULE=example_project.settings \
        DATABASE_URL=sqlite:////tmp/x.sqlite3 python tests/admin/example_seed.py

Prints one JSON line: ``{"cookie_name": ..., "session_key": ..., "rows": n, "rolled_days":
n}`` (the closed days are rolled up, as the beat task would have done). The
session is created directly in the database, which is exactly what a login does; it
spares the browser a login form it would need JavaScript-driven typing to fill.
"""

import json
import random
from datetime import timedelta

import django


def seed(now, rows=700, seed_value=4):
    """History of two models over the last 14 days: succeeded, failed, pending rows."""
    from django_textclass.models import ClassificationRequest, ClassificationScore, text_hash

    rng = random.Random(seed_value)
    models = {
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english": ["POSITIVE", "NEGATIVE"],
        "cardiffnlp/twitter-roberta-base-sentiment-latest": ["positive", "neutral", "negative"],
    }
    requests, answers = [], []
    for i in range(rows):
        model = rng.choice(list(models))
        labels = models[model]
        created = now - timedelta(hours=rng.triangular(0, 14 * 24, 0))
        roll = rng.random()
        text = f"Sample review #{i}: {'great' if roll < 0.5 else 'meh'} <b>product</b>"
        row = ClassificationRequest(
            model_id=model,
            text=text,
            text_hash=text_hash(text),
            backend="default",
            created_at=created,
            next_attempt_at=None,
        )
        if roll < 0.05:
            row.status = "failed"
            row.attempts, row.error_code, row.error_message = 5, "http_503", "model loading"
            row.started_at = row.finished_at = created + timedelta(seconds=40)
        elif roll < 0.08:
            row.status, row.next_attempt_at = "pending", created
        else:
            weights = [0.55, 0.3, 0.15][: len(labels)]
            label = rng.choices(labels, weights)[0]
            score = min(1.0, max(0.34, rng.betavariate(6, 1.5)))
            backend_ms = int(rng.lognormvariate(5, 0.5))
            row.status, row.top_label, row.top_score, row.attempts = "succeeded", label, score, 1
            row.started_at = created + timedelta(milliseconds=rng.randint(20, 400))
            row.finished_at = row.started_at + timedelta(milliseconds=backend_ms)
            row.backend_ms = backend_ms
            others = [other for other in labels if other != label]
            answers.append(
                (
                    len(requests),
                    [(label, score)] + [(other, (1 - score) / len(others)) for other in others],
                )
            )
        requests.append(row)
    requests = ClassificationRequest.objects.bulk_create(requests)
    ClassificationScore.objects.bulk_create(
        ClassificationScore(request=requests[index], rank=rank, label=label, score=score)
        for index, ranking in answers
        for rank, (label, score) in enumerate(ranking)
    )
    return len(requests)


def login_session(user):
    """A database session logged in as ``user``; returns its key."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def main():
    """Migrate, seed, create the staff user and print the session cookie as JSON."""
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", interactive=False, verbosity=0)
    user = get_user_model().objects.create_superuser("browser", "browser@example.com", None)
    from django_textclass import rollup

    rows = seed(timezone.now())
    print(
        json.dumps(
            {
                "cookie_name": settings.SESSION_COOKIE_NAME,
                "session_key": login_session(user),
                "rows": rows,
                "rolled_days": rollup.roll(),  # what the beat task would have done
            }
        )
    )


if __name__ == "__main__":
    main()
