#!/usr/bin/env python
"""How fast are the admin's history list and dashboard on a big table (PostgreSQL)?

Creates a scratch PostgreSQL database, seeds it with N classification requests in one
``INSERT ... SELECT FROM generate_series`` (no ORM loop), then renders pages through
Django's test client, several runs each, and prints the median and p95 time and the
number of SQL queries per page. The dashboard pages are measured twice: reading every
row, then after the daily roll-up has summed the closed days (its run is timed too, and
the two sets of statistics are compared). The scratch database is dropped at the end.

    python benchmarks/dashboard.py              # 1,000,000 rows (about a minute to seed)
    python benchmarks/dashboard.py --quick      # 20,000 rows: a smoke run for CI
    python benchmarks/dashboard.py --rows 200000 --runs 9

PostgreSQL: 127.0.0.1:5432, user ``postgres`` with trust auth, like the test suite;
override with TEXTCLASS_BENCH_PG_HOST / _PORT / _USER / _PASSWORD. The figures are for
reading, never a pass/fail: machines differ.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG = {
    "HOST": os.environ.get("TEXTCLASS_BENCH_PG_HOST", "127.0.0.1"),
    "PORT": os.environ.get("TEXTCLASS_BENCH_PG_PORT", "5432"),
    "USER": os.environ.get(
        "TEXTCLASS_BENCH_PG_USER", os.environ.get("TEXTCLASS_TEST_PG_USER", "postgres")
    ),
    "PASSWORD": os.environ.get("TEXTCLASS_BENCH_PG_PASSWORD", ""),
}

# One statement: every column of the requests table, drawn from generate_series. A fixed
# seed makes the data (and so the plans) the same from run to run.
SEED_SQL = """
SELECT setseed(0.42);
INSERT INTO django_textclass_classificationrequest (
    uuid, owner_id, model_id, function_to_apply, top_k, use_cache, text, text_hash,
    status, attempts, error_code, error_message, created_at, started_at, finished_at,
    next_attempt_at, lease_expires_at, claim_token, top_label, top_score, backend,
    backend_ms, reused_from_id, content_type_id, object_id, source_field{extra_columns}
)
SELECT
    gen_random_uuid(), CASE WHEN r.owner_roll < 0.7 THEN %(owner)s END, m.model_id, '', NULL,
    true, 'Benchmark text number ' || g || ': the delivery was late but the product is fine',
    md5(g::text) || md5((g + 1)::text),
    s.status, CASE WHEN s.status = 'pending' THEN 0 ELSE 1 + (r.roll * 3)::int END,
    CASE WHEN s.status = 'failed' THEN 'http_503' ELSE '' END,
    CASE WHEN s.status = 'failed' THEN 'model loading' ELSE '' END,
    r.created_at,
    CASE WHEN s.status IN ('succeeded', 'failed', 'running') THEN r.created_at + r.queue END,
    CASE WHEN s.status IN ('succeeded', 'failed') THEN r.created_at + r.queue + r.call
         WHEN s.status = 'cancelled' THEN r.created_at + interval '1 minute' END,
    CASE WHEN s.status = 'pending' THEN r.created_at END, NULL, NULL,
    CASE WHEN s.status = 'succeeded'
         THEN m.labels[1 + floor(power(r.roll, 1.6) * array_length(m.labels, 1))::int]
         ELSE '' END,
    CASE WHEN s.status = 'succeeded' THEN 0.34 + 0.66 * sqrt(r.score_roll) END,
    'default',
    CASE WHEN s.status = 'succeeded' THEN (extract(epoch FROM r.call) * 1000)::int END,
    NULL, NULL, '', ''{extra_values}
FROM generate_series(1, %(rows)s) AS g
CROSS JOIN LATERAL (
    SELECT random() AS roll, random() AS status_roll, random() AS owner_roll,
           random() AS score_roll, random() AS model_roll,
           -- Rows arrive in time order, as in a real history table (the heap is
           -- ordered by created_at, which is what makes date ranges cheap to read).
           now() - interval '90 days' * (1 - g::float / %(rows)s)
               - random() * interval '2 minutes' AS created_at,
           (random() * 400) * interval '1 millisecond' AS queue,
           (40 + random() * random() * 900) * interval '1 millisecond' AS call
) AS r
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.model_roll < 0.6
                THEN 'distilbert/distilbert-base-uncased-finetuned-sst-2-english'
                WHEN r.model_roll < 0.9 THEN 'cardiffnlp/twitter-roberta-base-sentiment-latest'
                ELSE 'SamLowe/roberta-base-go_emotions' END AS model_id,
           CASE WHEN r.model_roll < 0.6 THEN ARRAY['POSITIVE', 'NEGATIVE']
                WHEN r.model_roll < 0.9 THEN ARRAY['positive', 'neutral', 'negative']
                ELSE ARRAY['neutral', 'approval', 'admiration', 'annoyance', 'gratitude',
                           'disapproval', 'amusement', 'curiosity', 'love', 'optimism']
           END AS labels
) AS m
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.status_roll < 0.90 THEN 'succeeded'
                WHEN r.status_roll < 0.94 THEN 'failed'
                WHEN r.status_roll < 0.96 THEN 'cancelled'
                WHEN r.status_roll < 0.99 THEN 'pending'
                ELSE 'running' END AS status
) AS s;
"""


def parse_args():
    """The command line; ``--quick`` sets rows and runs for a smoke run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to seed")
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 3 runs (CI smoke)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per page")
    parser.add_argument(
        "--db-name", default=None, help="scratch database name (default: textclass_bench_<pid>)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the scratch database (to EXPLAIN queries afterwards)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="use the --db-name database as it is (seeded by a --keep run)",
    )
    args = parser.parse_args()
    if args.quick:
        args.rows, args.runs = 20_000, 3
    args.db_name = args.db_name or f"textclass_bench_{os.getpid()}"
    return args


def admin_connection():
    """An autocommit connection to the ``postgres`` database, to create and drop ours."""
    import psycopg

    return psycopg.connect(
        host=PG["HOST"],
        port=PG["PORT"],
        user=PG["USER"],
        password=PG["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def configure(db_name):
    """Configure Django in-process: the admin and the app, on the scratch database."""
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",  # noqa: S106 - a throw-away database USE_TZ=True, TIME_ZONE="UTC",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_textclass",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": db_name, **PG}},
        TEXTCLASS={
            "BACKENDS": {"default": {"BACKEND": "django_textclass.backends.offline.Backend"}}
        },
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        STATIC_URL="/static/",
    )
    django.setup()


urlpatterns = []  # filled in by main() once Django is configured


SEEDED_COLUMNS = set(
    SEED_SQL.split("classificationrequest (", 1)[1]
    .split(")", 1)[0]
    .replace("{extra_columns}", "")
    .replace(",", " ")
    .split()
)


def seed_sql():
    """SEED_SQL, plus each column it does not name, filled with the model field's default.

    The model may grow columns this script does not know about; they get what a
    ``save()`` would have given them.
    """
    from django.db import connection

    from django_textclass.models import ClassificationRequest

    columns, values, params = [], [], {}
    for field in ClassificationRequest._meta.concrete_fields:
        if field.column in SEEDED_COLUMNS or field.primary_key:
            continue
        default = field.get_default() if field.has_default() else (None if field.null else "")
        columns.append(connection.ops.quote_name(field.column))
        values.append(f"%(default_{len(params)})s")
        params[f"default_{len(params)}"] = field.get_db_prep_save(default, connection)
    sql = SEED_SQL.format(
        extra_columns="".join(f", {c}" for c in columns),
        extra_values="".join(f", {v}" for v in values),
    )
    return sql, params


def seed(rows):
    """Create the ``bench`` superuser and ``rows`` requests; returns (user, seconds)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    sql, params = seed_sql()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, {"rows": rows, "owner": user.pk, **params})
        cursor.execute("VACUUM ANALYZE django_textclass_classificationrequest")
    return user, time.perf_counter() - started


def measure(client, url, runs):
    """Render ``url`` ``runs`` times after a warm-up; returns (median ms, p95 ms, queries)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, follow=True)  # warm-up: template loading, first-plan caching
    timings, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, follow=True)  # the default view is a redirect
            if response.streaming:
                b"".join(response.streaming_content)
            timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        queries = len(captured)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings), p95, queries


def main():
    """Create, seed, measure, print, drop."""
    args = parse_args()
    if not args.reuse:
        with admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{args.db_name}"')
            admin.execute(f'CREATE DATABASE "{args.db_name}"')
    try:
        configure(args.db_name)
        from django.contrib import admin as django_admin
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from django.urls import path

        urlpatterns.append(path("admin/", django_admin.site.urls))
        call_command("migrate", verbosity=0)
        if args.reuse:
            from django.contrib.auth import get_user_model

            user = get_user_model().objects.get(username="bench")
        else:
            user, seconds = seed(args.rows)
            print(f"Seeded {args.rows:,} rows in {seconds:.1f} s.")
        server = connection.cursor().connection.info.server_version
        print(f"PostgreSQL {server // 10000}.{server % 10000}, {connection.settings_dict['NAME']}.")
        client = Client()
        client.force_login(user)
        base = "/admin/django_textclass/classificationrequest/"
        model = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
        all_time = "created_at__gte=1970-01-01+00%3A00%3A00%2B00%3A00"
        lists = [
            ("changelist", base),
            ("changelist, model + status filter", f"{base}?model_id={model}&status__exact=failed"),
            ("changelist, text search", f"{base}?q=number+12345"),
        ]
        dashboards = [
            ("dashboard, default view (past 7 days)", f"{base}dashboard/"),
            ("dashboard, all time, all rows, per day", f"{base}dashboard/?{all_time}"),
            (
                "dashboard, all models, past 30 days, per day",
                f"{base}dashboard/?created_at__gte={_days_ago(30)}",
            ),
            (
                "dashboard, one model, past 7 days, per hour",
                f"{base}dashboard/?model_id={model}&bucket=hour&created_at__gte={_days_ago(7)}",
            ),
            (
                "dashboard, one model, all time, per day",
                f"{base}dashboard/?model_id={model}&{all_time}",
            ),
        ]
        print(f"\n{'page':<56} {'median ms':>10} {'p95 ms':>9} {'queries':>8}")
        for name, url in lists:
            print_row(name, *measure(client, url, args.runs))
        live = {name: measure(client, url, args.runs) for name, url in dashboards}
        before = stats_of_everything()
        for name, _url in dashboards:
            print_row(f"{name} [live]", *live[name])

        from django_textclass import rollup

        started = time.perf_counter()
        days = rollup.roll()
        print(f"\nRolled up {days} days in {time.perf_counter() - started:.1f} s; ", end="")
        with connection.cursor() as cursor:  # as after seeding: plans from fresh statistics
            cursor.execute("VACUUM ANALYZE django_textclass_rollupcount")
            cursor.execute("VACUUM ANALYZE django_textclass_rolluphistogram")
        started = time.perf_counter()
        rollup.verify()
        print(f"verify() took {time.perf_counter() - started:.1f} s.")
        compare(before, stats_of_everything())
        print(f"\n{'page':<56} {'median ms':>10} {'p95 ms':>9} {'queries':>8}")
        for name, url in dashboards:
            print_row(f"{name} [rolled]", *measure(client, url, args.runs))
        print(
            f"\n{args.runs} timed runs per page after one warm-up; Django test client, "
            "in-process (no network)."
        )
        print(
            "Reproduce: python benchmarks/dashboard.py"
            + (" --quick" if args.quick else f" --rows {args.rows} --runs {args.runs}")
        )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            with admin_connection() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{args.db_name}"')


def print_row(name, median, p95, queries):
    """One line of the results table."""
    print(f"{name:<56} {median:>10.0f} {p95:>9.0f} {queries:>8}")


def stats_of_everything():
    """``compute_stats`` of every row, per day (what the all-time dashboard shows)."""
    from django_textclass.models import ClassificationRequest
    from django_textclass.stats import compute_stats

    return compute_stats(ClassificationRequest.objects.all(), bucket="day")


def compare(live, rolled):
    """Print whether the counts agree exactly and how far the percentiles moved; exit if wrong."""
    percentile_keys = ("latency_ms", "backend_ms")
    same = all(
        live[key] == rolled[key]
        for key in live
        if key not in (*percentile_keys, "percentiles_estimated")
    )
    worst = max(
        abs(rolled[key][p] - live[key][p]) / live[key][p]
        for key in percentile_keys
        for p in live[key]
        if live[key][p]
    )
    print(
        f"All-time statistics, live vs rolled: counts and shares "
        f"{'identical' if same else 'DIFFERENT'}; percentiles within {worst * 100:.2f} %."
    )
    if not same or worst > 0.01:
        # Not a speed check: the roll-up gave wrong numbers, which no figure excuses.
        raise SystemExit("The roll-up disagrees with the requests table.")


def _days_ago(days):
    from datetime import timedelta
    from urllib.parse import quote

    from django.utils import timezone

    return quote((timezone.now() - timedelta(days=days)).replace(microsecond=0).isoformat())


if __name__ == "__main__":
    main()
