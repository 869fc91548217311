"""The worker's queries under ``EXPLAIN ANALYZE`` at 100,000 pending rows (PostgreSQL).

    TEXTCLASS_TEST_DB=postgres python benchmarks/plans.py            # 100,000 rows
    TEXTCLASS_TEST_DB=postgres python benchmarks/plans.py --rows 20000

The table is filled with one bulk insert and the plans are read twice: first on the fresh
table, before any ``ANALYZE`` (as right after a bulk import, before autovacuum has looked),
then after ``ANALYZE``. For each query it prints the plan's first line, the indexes it used,
and the execution time; a sequential scan of the requests table is flagged (a figure to read,
not a failure: the exit status is 0). The statements
are the worker's own (the same functions build them), so a plan here is the plan it gets.
"""

import argparse
import os
import re
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"


def main(argv=None):
    """Seed, explain each query on the fresh table and after ANALYZE, print the plans."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--verbose", action="store_true", help="print whole plans")
    args = parser.parse_args(argv)
    os.environ.setdefault("TEXTCLASS_TEST_RUN_DIR", tempfile.mkdtemp(prefix="textclass-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

    import django

    django.setup()
    from django.db import connection, transaction
    from django.test.utils import setup_databases, teardown_databases

    if connection.vendor != "postgresql":
        raise SystemExit("plans.py reads PostgreSQL plans: set TEXTCLASS_TEST_DB=postgres")
    db_config = setup_databases(verbosity=0, interactive=False)
    slow = []
    try:
        pks = seed(args.rows)
        for moment in ("fresh table, no ANALYZE yet", "after ANALYZE"):
            if moment == "after ANALYZE":
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE django_textclass_classificationrequest")
            print(f"\n{args.rows:,} pending rows after as many succeeded, {moment}:")
            with transaction.atomic():  # the claim's FOR UPDATE is compiled in one
                statements = queries(pks)
            for name, sql, params, setup in statements:
                plan = explain(sql, params, setup)
                scans = sorted(
                    set(
                        re.findall(
                            r"(?:Index Only Scan|Index Scan|Bitmap Index "
                            r"Scan) (?:Backward )?(?:using|on) (\w+)",
                            plan,
                        )
                    )
                )
                seq = "Seq Scan on django_textclass_classificationrequest" in plan
                took = re.search(r"Execution Time: ([\d.]+) ms", plan).group(1)
                flag = "  <-- reads the whole table" if seq else ""
                print(
                    f"  {name:44s} {float(took):8.2f} ms  indexes: "
                    f"{', '.join(scans) or 'none'}{flag}"
                )
                if args.verbose:
                    print("    " + plan.replace("\n", "\n    "))
                if seq:
                    slow.append((moment, name))
    finally:
        teardown_databases(db_config, verbosity=0)
    print(
        "\nreproduce: TEXTCLASS_TEST_DB=postgres python benchmarks/plans.py"
        + (f" --rows {args.rows}" if args.rows != 100_000 else "")
    )
    if slow:
        print(f"sequential scans of the requests table: {slow}")
    return 0


def seed(count):
    """``count`` pending requests after as many succeeded ones, inserted 10,000 per statement.

    Returns the pks of the pending ones, in order. The succeeded ones are what a site has
    classified before: the cache lookups search them.
    """
    from django.utils import timezone

    from django_textclass.models import ClassificationRequest, Status, text_hash

    now = timezone.now()
    rows = []
    for n in range(2 * count):
        text = f"seeded review {n % (count + count // 2)} was good"
        done = n < count
        rows.append(
            ClassificationRequest(
                model_id=MODEL,
                text=text,
                text_hash=text_hash(text),
                source_hash=text_hash(text),
                backend="default",
                status=Status.SUCCEEDED if done else Status.PENDING,
                finished_at=now if done else None,
                top_label="POSITIVE" if done else "",
                top_score=0.9 if done else None,
            )
        )
    created = ClassificationRequest.objects.bulk_create(rows, batch_size=10_000)
    return [row.pk for row in created[count:]]


def queries(pks):
    """``(name, sql, params)`` of each worker query, built by the worker's own code."""
    from django.utils import timezone

    from django_textclass.models import ClassificationRequest
    from django_textclass.services import bulk
    from django_textclass.types import LabelScore, Parameters, Ranking

    now = timezone.now()
    lease = now + timedelta(seconds=60)
    token = uuid.uuid4()
    middle = pks[len(pks) // 2 : len(pks) // 2 + 128]
    requests = ClassificationRequest.objects
    like = requests.get(pk=middle[0])
    gather = (
        requests.due(now)
        .filter(
            backend=like.backend,
            model_id=like.model_id,
            use_cache=like.use_cache,
            function_to_apply=like.function_to_apply,
            top_k=like.top_k,
        )
        .order_by("next_attempt_at")[:128]
    )
    hashes = set(requests.filter(pk__in=middle).values_list("text_hash", flat=True))
    cached = requests.newest_answers_sql(
        backend="default",
        model_id=MODEL,
        parameters=Parameters(),
        hashes=hashes,
        since=now - timedelta(days=1),
    )
    twins = requests.in_flight(
        backend="default", model_id=MODEL, parameters=Parameters(), hashes=hashes, now=now
    ).exclude(claim_token=token)
    ranking = Ranking((LabelScore("POSITIVE", 0.9), LabelScore("NEGATIVE", 0.1)))
    answers = [(row, ranking) for row in requests.filter(pk__in=middle[:32])]
    claim_ids_sql = bulk.claim_ids_sql(middle, token, now, lease)
    gather_sql = bulk.claim_sql(gather, token, now, lease)
    complete = bulk.complete_sql(token, answers, now, 100, {})
    # The completion's rows must be running under its token: claimed first, rolled back after.
    claimed = bulk.claim_sql(
        requests.filter(pk__in=middle[:32]).due(now).order_by(), token, now, lease
    )
    return [
        ("claim of a message's 128 ids", *claim_ids_sql, None),
        ("top-up: 128 more of the same model", *gather_sql, None),
        ("cache lookup of 128 texts", *cached, None),
        ("twins in flight of 128 texts", *twins.values("text_hash").query.sql_with_params(), None),
        ("completion of a call of 32", *complete, claimed),
    ]


def explain(sql, params, setup=None):
    """The ``EXPLAIN ANALYZE`` text of one statement (after ``setup``), all rolled back."""
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            if setup is not None:
                cursor.execute(*setup)
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = "\n".join(line for (line,) in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


if __name__ == "__main__":
    sys.exit(main())
