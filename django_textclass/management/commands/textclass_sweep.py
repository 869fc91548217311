"""``manage.py textclass_sweep``: recover stuck requests now (what the beat task does)."""

from django_textclass import services
from django_textclass.management.commands._utils import OneLineErrorsCommand, whole_number

#: Most requests one run may requeue and re-send (each list is read into memory).
MAX_LIMIT = 1_000_000


class Command(OneLineErrorsCommand):
    """Requeue requests whose worker died, re-send lost wake-ups, settle waiting splits."""

    help = (
        "Recover stuck classification requests now: running requests past their lease are "
        "requeued (or failed when out of attempts), pending requests whose wake-up was lost "
        "are sent again. The same as the django_textclass.sweep task."
    )

    def add_arguments(self, parser):
        """Add --limit."""
        parser.add_argument(
            "--limit",
            default="10000",
            help=f"Most requests requeued and most re-sent in this run, 1 to {MAX_LIMIT} "
            "(default 10000).",
        )

    def handle(self, *args, limit, **options):
        """Run one sweep and print its counts on one line."""
        counts = services.sweep(limit=whole_number("--limit", limit, 1, MAX_LIMIT))
        self.stdout.write(
            f"Sweep: {counts['requeued']} requeued, {counts['failed']} failed, "
            f"{counts['dispatched']} dispatched."
        )
