"""``manage.py textclass_rollup``: sum closed days into the dashboard's roll-up now."""

from django_textclass import rollup
from django_textclass.management.commands._utils import OneLineErrorsCommand, whole_number

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
            "--max-days", default=None,
            help=f"Most days summed in this run, 1 to {MAX_DAYS} (default: all that are due).",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--verify", action="store_true",
            help="First compare every rolled day with the requests table (one full scan) "
                 "and sum again those that differ (after raw SQL or cascaded deletes).",
        )
        mode.add_argument(
            "--rebuild", action="store_true",
            help="Forget the whole roll-up and sum every closed day again.",
        )

    def handle(self, *args, max_days, verify, rebuild, **options):
        """Run and print what was done on one line."""
        if max_days is not None:
            max_days = whole_number("--max-days", max_days, 1, MAX_DAYS)
        if rebuild:
            days = rollup.rebuild()
            self.stdout.write(f"Rebuilt: rolled up {days} days.")
            return
        found = ""
        if verify:
            found = f"Verified: {len(rollup.verify())} days changed. "
        days = rollup.roll(max_days=max_days)
        self.stdout.write(f"{found}Rolled up {days} days.")
