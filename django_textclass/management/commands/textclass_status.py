"""``manage.py textclass_status``: where the requests are, and the health of the pipeline."""

from django.contrib.contenttypes.models import ContentType

from django_textclass import catalog, health
from django_textclass.exceptions import InvalidInputError
from django_textclass.management import watch as watching
from django_textclass.management.commands._utils import (
    OneLineErrorsCommand,
    bad_argument,
    installed_model,
    moment,
    short_repr,
    whole_number,
)
from django_textclass.models import ClassificationRequest

#: Longest --timeout, in seconds (about 115 days).
#: Longest --interval, in seconds.
MAX_INTERVAL = 3600


class Command(OneLineErrorsCommand):
    """Counts by status of the chosen requests, then the health report; or watch them."""

    help = (
        "Show how many classification requests are pending, running, succeeded, failed and "
        "cancelled (all of them, or those of --model, --source and --since), the failures "
        "by error code, and the health of the pipeline: the backlog and the age of its "
        "oldest request, the last sweep, each backend's circuit, the recent failure rate. "
        "With --watch, follow the chosen requests until none is pending or running."
    )

    def add_arguments(self, parser):
        """Add the scope (--model, --source, --since) and --watch, --interval, --timeout."""
        parser.add_argument(
            "--model",
            action="append",
            dest="model_ids",
            metavar="M",
            help="Only requests of this Hub model id, or of this key of "
            "TEXTCLASS['MODELS'] (repeatable).",
        )
        parser.add_argument(
            "--source",
            metavar="app_label.Model",
            help="Only requests whose text came from this model's objects.",
        )
        parser.add_argument(
            "--since",
            metavar="DATE",
            help="Only requests created on or after DATE (YYYY-MM-DD or an ISO date-time).",
        )
        parser.add_argument(
            "--watch",
            action="store_true",
            help="Follow the chosen requests until none is pending or running "
            "(a progress bar on a terminal, a line every 10 s elsewhere).",
        )
        parser.add_argument(
            "--interval",
            default="2",
            help=f"With --watch: seconds between two looks, 1 to {MAX_INTERVAL} (default 2).",
        )
        parser.add_argument(
            "--timeout",
            help=f"With --watch: stop after this many seconds, "
            f"1 to {watching.MAX_TIMEOUT}, and exit with status 1.",
        )

    def handle(self, *args, model_ids, source, since, watch, interval, timeout, **options):
        """Print the counts (or watch them); then the health report."""
        requests = self._scope(model_ids, source, since)
        interval = whole_number("--interval", interval, 1, MAX_INTERVAL)
        if timeout is not None and not watch:
            raise bad_argument("--timeout only applies with --watch")
        timeout = (
            None if timeout is None else whole_number("--timeout", timeout, 1, watching.MAX_TIMEOUT)
        )
        if watch:
            self._watch(requests, interval, timeout)
            return
        counts = watching.counts_by_status(requests)
        self.stdout.write(self._table(counts, requests, since))
        self.stdout.write(health_text(health.report()))

    def _scope(self, model_ids, source, since):
        requests = ClassificationRequest.objects.filter(parent__isnull=True)
        if model_ids:
            for model_id in model_ids:
                try:
                    catalog.validate_name(model_id)
                except InvalidInputError as exc:
                    raise bad_argument(f"--model {short_repr(model_id)}: {exc}") from None
            requests = requests.named(model_ids)
        if source is not None:
            model = installed_model("--source", source)
            requests = requests.filter(content_type=ContentType.objects.get_for_model(model))
        if since is not None:
            requests = requests.filter(created_at__gte=moment("--since", since))
        return requests

    def _watch(self, requests, interval, timeout):
        counts, seconds = watching.follow(
            requests, self.stderr, description="final", interval=interval, timeout=timeout
        )
        self.stdout.write(f"Done in {seconds:.1f} s: {watching.describe(counts)}.")

    def _table(self, counts, requests, since):
        scope = "since " + since if since else "all time"
        width = max(len(f"{n:,}") for n in counts.values())
        lines = [f"Requests ({scope}, split texts counted once): {sum(counts.values()):,}"]
        failures = dict(watching.failures_by_code(requests))
        for status, n in counts.items():
            line = f"  {status:<10} {n:>{width},}"
            if status == "failed" and failures:
                line += "   " + ", ".join(
                    f"{code or '(none)'} {k:,}" for code, k in failures.items()
                )
            lines.append(line)
        return "\n".join(lines)


def health_text(report):
    """The health report as a few lines of text."""
    lines = [f"Health: {report['status']}"]
    for problem in report["problems"]:
        lines.append(f"  ! {problem}")
    backlog = report["backlog"]
    age = backlog["oldest_pending_age_seconds"]
    lines.append(
        f"  backlog: {backlog['pending']:,} pending, {backlog['running']:,} running"
        + ("" if age is None else f"; the oldest pending was submitted {age:,.0f} s ago")
    )
    sweep = report["sweep"]
    lines.append(
        "  sweep: never ran"
        if sweep["age_seconds"] is None
        else f"  sweep: last ran {sweep['age_seconds']:,.0f} s ago"
    )
    for pace in report["backends"]:
        target = pace["backend"] + (f" {pace['model']}" if pace["model"] else "")
        line = f"  backend {target}: circuit {pace['circuit']}"
        if pace["waiting_seconds"]:
            line += f", no call for {pace['waiting_seconds']:,.0f} s ({pace['reason']})"
        if pace["last_error"]:
            line += f", last error {pace['last_error']}"
        lines.append(line)
    rate = report["failure_rate"]
    window = rate["window_seconds"]
    done = rate["succeeded"] + rate["failed"]
    lines.append(
        f"  failures of requests created in the last {window:,.0f} s: {rate['failed']:,} of "
        f"{done:,}" + ("" if rate["rate"] is None else f" ({rate['rate'] * 100:.1f} %)")
    )
    return "\n".join(lines)
