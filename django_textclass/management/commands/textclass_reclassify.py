"""``manage.py textclass_reclassify --key sentiment``: re-run a key's texts with its current model.

After a key of ``TEXTCLASS["MODELS"]`` moves to another model or revision, its history still
holds the answers of the old one. This command submits those texts again, as new requests
with the key's current backend, model, revision and parameters; the old rows stay as they
are (the history keeps both answers).
"""

import time

from django.contrib.contenttypes.models import ContentType
from django.core.management.base import CommandError
from django.utils import timezone

from django_textclass import catalog, services
from django_textclass.backends import backend_config
from django_textclass.content.sync import latest_requests
from django_textclass.exceptions import TextClassConfigurationError
from django_textclass.management import watch
from django_textclass.management.commands._utils import (
    OneLineErrorsCommand,
    bad_argument,
    moment,
    short_repr,
    whole_number,
)
from django_textclass.management.commands.textclass_backfill import summary
from django_textclass.management.progress import Progress
from django_textclass.models import ClassificationRequest, Status

#: Most old requests read per batch; one batch's new requests are stored in one transaction.
MAX_BATCH_SIZE = 10_000
#: Longest --timeout, in seconds (about 115 days).
#: Seconds between two looks at the requests while waiting (--wait).
WAIT_INTERVAL = 2.0
#: The old requests worth re-running: those that ended (an answer, or a failure). Pending and
#: running ones finish with the model they were submitted with; a later run takes them then.
DONE = (Status.SUCCEEDED, Status.FAILED)


class Command(OneLineErrorsCommand):
    """Submit the texts a key's older model or revision answered, with its current one."""

    help = (
        "Classify again, with a model key's current model and revision, the texts that "
        "requests of that key got from an older model or revision. New requests are "
        "created in bulk, one batch per transaction, linked to the same owner and source "
        "object; the old requests are kept. A text that already has a request of the "
        "current model and revision is skipped, so an interrupted run resumes."
    )

    def add_arguments(self, parser):
        """Add --key and the options."""
        parser.add_argument("--key", required=True, help="A key of TEXTCLASS['MODELS'].")
        parser.add_argument(
            "--since",
            metavar="DATE",
            help="Only requests created on or after DATE (YYYY-MM-DD or an ISO date-time).",
        )
        parser.add_argument("--until", metavar="DATE", help="Only requests created before DATE.")
        parser.add_argument(
            "--batch-size",
            default="500",
            help=f"Old requests per batch and transaction, 1 to {MAX_BATCH_SIZE} (default 500).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be created; write nothing."
        )
        watch.add_wait_arguments(parser)

    def handle(self, *args, key, since, until, batch_size, dry_run, wait, timeout, **options):
        """Walk the outdated requests in id order; print one summary line (two with --wait)."""
        target = self._target(key)
        batch_size = whole_number("--batch-size", batch_size, 1, MAX_BATCH_SIZE)
        since = None if since is None else moment("--since", since)
        until = None if until is None else moment("--until", until)
        if since is not None and until is not None and since >= until:
            raise bad_argument("--since must be earlier than --until")
        if timeout is not None and not wait:
            raise bad_argument("--timeout only applies with --wait")
        timeout = (
            None if timeout is None else whole_number("--timeout", timeout, 1, watch.MAX_TIMEOUT)
        )
        if wait and dry_run:
            raise bad_argument("--wait cannot be used with --dry-run: nothing is created")
        outdated = outdated_requests(target, since, until)
        total = outdated.count()
        started, created_since = time.monotonic(), timezone.now()
        totals = {"created": 0, "up to date": 0}
        scanned, last_pk = 0, None
        seen = set() if dry_run else None
        progress = Progress(
            self.stderr, total=total, unit="requests", description=f"reclassify {key}"
        )
        try:
            while True:
                page = outdated if last_pk is None else outdated.filter(pk__gt=last_pk)
                batch = list(
                    page.values(
                        "pk",
                        "owner_id",
                        "content_type_id",
                        "object_id",
                        "source_field",
                        "text_hash",
                    )[:batch_size]
                )
                if not batch:
                    break
                chosen = to_rerun(batch, target, seen)
                if chosen and not dry_run:
                    services.rerun(ClassificationRequest.objects.filter(pk__in=chosen), target)
                totals["created"] += len(chosen)
                totals["up to date"] += len(batch) - len(chosen)
                scanned += len(batch)
                last_pk = batch[-1]["pk"]
                progress.set(scanned, postfix=f"{totals['created']:,} requests created")
        except KeyboardInterrupt:
            raise CommandError(
                f"Interrupted after {scanned} requests ({totals['created']} new requests "
                "created); run the same command again to resume.",
                returncode=130,
            ) from None
        finally:
            progress.close()
        verb = "would be created" if dry_run else "created"
        revision = f" revision {target.revision}" if target.revision else ""
        self.stdout.write(
            f"{key}: {scanned} requests of older models or revisions, {totals['created']} new "
            f"requests {verb} for {target.model_id}{revision} on {target.backend!r}, "
            f"{totals['up to date']} already done or superseded, in "
            f"{time.monotonic() - started:.1f} s."
        )
        if wait:
            self._wait(target, created_since, timeout)

    def _target(self, key):
        if not catalog.is_key(key):
            keys = ", ".join(catalog.key_names()) or "none configured"
            raise bad_argument(
                f"--key {short_repr(key)} is not a key of TEXTCLASS['MODELS'] ({keys})"
            )
        try:
            target = catalog.entry(key)
            backend_config(target.backend)
        except TextClassConfigurationError as exc:
            raise bad_argument(str(exc)) from None
        return target

    def _wait(self, target, created_since, timeout):
        """Watch the key's requests of the current model created since ``created_since``."""
        requests = ClassificationRequest.objects.filter(
            model_key=target.key,
            model_id=target.model_id,
            revision=target.revision,
            created_at__gte=created_since,
            parent__isnull=True,  # a split text counts once, as its parent
        )
        started = time.monotonic()
        try:
            counts = watch.watch(
                requests,
                self.stderr,
                description="classified",
                interval=WAIT_INTERVAL,
                timeout=timeout,
            )
        except watch.WatchTimeout as exc:
            raise CommandError(
                f"Still {watch.unfinished(exc.counts):,} requests pending or running after "
                f"{timeout} s ({watch.describe(exc.counts)}); the workers go on.",
                returncode=1,
            ) from None
        except KeyboardInterrupt:
            raise CommandError(
                "Stopped waiting; the workers go on (textclass_status --watch shows them).",
                returncode=130,
            ) from None
        self.stdout.write(
            summary(counts, watch.failures_by_code(requests), time.monotonic() - started)
        )


def outdated_requests(target, since=None, until=None):
    """The key's finished top-level requests answered by another model or revision."""
    requests = ClassificationRequest.objects.filter(
        model_key=target.key,
        parent__isnull=True,
        status__in=DONE,
    ).exclude(model_id=target.model_id, revision=target.revision)
    if since is not None:
        requests = requests.filter(created_at__gte=since)
    if until is not None:
        requests = requests.filter(created_at__lt=until)
    return requests.order_by("pk")


def to_rerun(batch, target, seen=None):
    """The pks of ``batch`` (old requests, as dicts) whose text needs a request of ``target``.

    A request of a source object counts only if it is still the object's newest of the key
    for its field: a newer one (of the current model, made by an earlier run or by a save;
    or of a newer text) supersedes it. A request without a source is skipped when its owner
    already has a request of the current model and revision for the same text; of several
    old requests for one text, only the first is taken. ``seen``, when given, remembers the
    texts taken across batches (a dry run, which stores nothing for the next batch to find).
    """
    chosen, sourced, free = [], {}, []
    for row in batch:
        if row["content_type_id"] is None:
            free.append(row)
        else:
            sourced.setdefault(row["content_type_id"], []).append(row)
    for content_type_id, rows in sourced.items():
        newest = latest_requests(
            ContentType.objects.get_for_id(content_type_id),
            {row["object_id"] for row in rows},
            {row["source_field"] for row in rows},
            [target.key],
        )
        chosen += [
            row["pk"]
            for row in rows
            if newest.get((row["object_id"], row["source_field"], target.key), {}).get("pk")
            == row["pk"]
        ]
    if free:
        done = set(
            ClassificationRequest.objects.filter(
                model_key=target.key,
                model_id=target.model_id,
                revision=target.revision,
                parent__isnull=True,
                content_type__isnull=True,
                text_hash__in={row["text_hash"] for row in free},
            ).values_list("owner_id", "text_hash")
        )
        if seen is not None:
            done |= seen
        for row in free:
            text = (row["owner_id"], row["text_hash"])
            if text not in done:
                done.add(text)
                chosen.append(row["pk"])
        if seen is not None:
            seen |= done
    return chosen
