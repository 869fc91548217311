"""``manage.py textclass_cleanup --days N``: delete old finished requests, in batches."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from django_textclass.management.commands._utils import OneLineErrorsCommand, whole_number
from django_textclass.management.progress import Progress
from django_textclass.models import TERMINAL_STATUSES, ClassificationRequest

#: Oldest cut-off, in days (a century): far older would fall before the year 1.
MAX_DAYS = 36_500
#: Most requests deleted per transaction (their ids are one IN list).
MAX_BATCH_SIZE = 10_000


class Command(OneLineErrorsCommand):
    """Delete finished requests older than N days, a batch at a time."""

    help = (
        "Delete classification requests that finished (succeeded, failed or cancelled) more "
        "than --days days ago, with their scores and chunks, in batches of --batch-size. "
        "Pending and running requests are never deleted."
    )

    def add_arguments(self, parser):
        """Add --days, --batch-size and --dry-run."""
        parser.add_argument(
            "--days",
            required=True,
            help=f"Age in days (0 to {MAX_DAYS}) past which finished requests are deleted.",
        )
        parser.add_argument(
            "--batch-size",
            default="1000",
            help=f"Requests deleted per transaction, 1 to {MAX_BATCH_SIZE} (default 1000).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args, days, batch_size, dry_run, **options):
        """Delete (or count) in batches; print one summary line."""
        days = whole_number("--days", days, 0, MAX_DAYS)
        batch_size = whole_number("--batch-size", batch_size, 1, MAX_BATCH_SIZE)
        cutoff = timezone.now() - timedelta(days=days)
        # Top-level requests only: chunks go with their parent, and a chunk of a split
        # still waiting must never be deleted from under it.
        old = ClassificationRequest.objects.filter(
            parent__isnull=True, status__in=TERMINAL_STATUSES, finished_at__lt=cutoff
        )
        if dry_run:
            count = old.count()
            self.stdout.write(
                f"Would delete {count} request(s) finished before {cutoff:%Y-%m-%d %H:%M} UTC."
            )
            return
        deleted = 0
        # One COUNT up front gives the progress its total (and so its ETA).
        with Progress(
            self.stderr, total=old.count(), unit="requests", description="deleted"
        ) as progress:
            while True:
                # Only ids are read, one batch at a time: memory stays flat on any table size.
                ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
                if not ids:
                    break
                with transaction.atomic():
                    ClassificationRequest.objects.filter(pk__in=ids).delete()
                deleted += len(ids)
                progress.set(deleted)
        self.stdout.write(
            f"Deleted {deleted} request(s) finished before {cutoff:%Y-%m-%d %H:%M} UTC."
        )
