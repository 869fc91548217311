"""``manage.py textclass_rollup``: sum closed days into the dashboard's roll-up now."""

from django_textclass import rollup
from django_textclass.management.commands._utils import OneLineErrorsCommand, whole_number
from django_textclass.management.progress import Progress

#: Most days one run may sum (about 270 years of history).
MAX_DAYS = 100_000


class Command(OneLineErrorsCommand):
    """Roll up closed days (what the beat task does), check them, or start afresh."""

    help = (
        "Sum every closed UTC day not rolled up yet, and every day changed since, into the "
        "roll-up the dashboard and the statistics API read. The same as the "
        "django_textclass.rollup task."
    )

    def add_arguments(self, parser):
        """Add --max-days, and --verify or --rebuild."""
        parser.add_argument(
            "--max-days",
            default=None,
            help=f"Most days summed in this run, 1 to {MAX_DAYS} (default: all that are due).",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--verify",
            action="store_true",
            help="First compare every rolled day with the requests table (one full scan) "
            "and sum again those that differ (after raw SQL or cascaded deletes).",
        )
        mode.add_argument(
            "--rebuild",
            action="store_true",
            help="Forget the whole roll-up and sum every closed day again.",
        )

    def handle(self, *args, max_days, verify, rebuild, **options):
        """Run and print what was done on one line."""
        if max_days is not None:
            max_days = whole_number("--max-days", max_days, 1, MAX_DAYS)
        if rebuild:
            first, stop = rollup.closed_span()
            span = 0 if first is None else max(0, (stop - first).days)
            with Progress(self.stderr, total=span, unit="days", description="rebuilt") as progress:
                # The position in the span: days without requests are passed over at once.
                days = rollup.rebuild(on_day=lambda day: progress.set((day - first).days + 1))
                progress.set(span)
            self.stdout.write(f"Rebuilt: rolled up {days} days.")
            return
        found = ""
        if verify:
            found = f"Verified: {len(rollup.verify())} days changed. "
        with Progress(self.stderr, total=max_days, unit="days", description="rolled up") as bar:
            days = rollup.roll(max_days=max_days, on_day=lambda day: bar.set(bar.done + 1))
        self.stdout.write(f"{found}Rolled up {days} days.")
