"""SQL statements per worker task: what one ``process()`` of a batch sends to the database.

    TEXTCLASS_TEST_DB=postgres python benchmarks/statements.py
    python benchmarks/statements.py --batch 8     # SQLite, smaller batches

A count is not a timing: it is the same on every machine, so it compares two versions of the
code exactly. The script stores ``--batch`` distinct texts, runs the worker's body on them
once against the offline backend (in process, no HTTP: only the database work is counted; it
exists in every version, so the script runs on old checkouts too) and prints the statements by
kind. Statements of the test app's own signal receivers are left out.
"""

import argparse
import os
import sys
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None):
    """Print the statements of a few worker tasks, by kind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="texts per task (at most 256)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("TEXTCLASS_TEST_RUN_DIR", tempfile.mkdtemp(prefix="textclass-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import (
        override_settings,
        setup_databases,
        teardown_databases,
    )

    from django_textclass import (
        dispatch,  # the old path: works on every version
        services,
    )

    dispatch.send = lambda ids, countdown=None: len(ids)  # no broker: the wake-up is not counted
    # The offline backend takes up to 256 texts per call: one call per task.
    backends = {"default": {"BACKEND": "django_textclass.backends.offline.Backend"}}
    db_config = setup_databases(verbosity=0, interactive=False)
    print(f"database: {connection.vendor}, {args.batch} distinct texts per task")
    try:
        with override_settings(TEXTCLASS={**settings.TEXTCLASS, "BACKENDS": backends}):
            for run in range(args.runs):
                requests = services.submit([f"run {run}, text {i}" for i in range(args.batch)])
                captured = []
                with every_connection_records(captured):
                    services.process([request.pk for request in requests])
                ours = [sql for sql in captured if "testapp_" not in sql]
                kinds = Counter(sql.split()[0].upper() for sql in ours)
                listed = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
                print(
                    f"task {run + 1}: {len(ours)} statements ({listed}); "
                    f"{len(ours) / args.batch:.2f} per text"
                )
    finally:
        from django_textclass.services import worker

        worker.close_pools()  # the call threads' connections, before the database goes
        teardown_databases(db_config, verbosity=0)
    print(
        "reproduce: python benchmarks/statements.py"
        + (f" --batch {args.batch}" if args.batch != 32 else "")
    )


#: Where :func:`_record` appends statements, while :func:`every_connection_records` runs.
_captured = None


def _record(execute, sql, params, many, context):
    if _captured is not None:
        _captured.append(sql)
    return execute(sql, params, many, context)


def _wrap(sender, connection, **kwargs):
    if _record not in connection.execute_wrappers:
        connection.execute_wrappers.append(_record)


@contextmanager
def every_connection_records(captured):
    """Append to ``captured`` each statement sent meanwhile, by any thread's connection.

    The worker sends its calls from threads of their own (``CALLS_IN_FLIGHT``), each with
    its own connection, kept from one task to the next: a capture of the main thread's
    connection alone would miss them.
    """
    global _captured
    from django.db import connections
    from django.db.backends.signals import connection_created

    connection_created.connect(_wrap, weak=False)
    for connection in connections.all(initialized_only=True):
        _wrap(None, connection)
    _captured = captured
    try:
        yield
    finally:
        _captured = None


if __name__ == "__main__":
    main()
