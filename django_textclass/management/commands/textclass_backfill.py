"""``manage.py textclass_backfill app_label.Model``: classify existing objects in bulk."""

import time

from django.contrib.contenttypes.models import ContentType
from django.core.management.base import CommandError
from django.db import models
from django.utils import timezone

from django_textclass.content.registry import site
from django_textclass.content.sync import classify_objects
from django_textclass.management import watch
from django_textclass.management.commands._utils import (
    OneLineErrorsCommand,
    bad_argument,
    installed_model,
    moment,
    short_repr,
    whole_number,
)
from django_textclass.management.progress import Progress
from django_textclass.models import ClassificationRequest

#: Most objects per batch: one batch is read, and its requests stored, in one transaction.
MAX_BATCH_SIZE = 10_000
#: Most objects one run may walk (--limit).
MAX_LIMIT = 10**12
#: Longest --timeout, in seconds (about 115 days).
#: Seconds between two looks at the requests while waiting (--wait).
WAIT_INTERVAL = 2.0


class Command(OneLineErrorsCommand):
    """Create requests for the existing objects of a registered model, batch by batch."""

    help = (
        "Classify the existing objects of a registered model: requests are created in bulk, "
        "one batch per transaction, for each registered field and model whose text has no "
        "request yet (or changed since). Running it again skips what is done, so an "
        "interrupted run resumes."
    )

    def add_arguments(self, parser):
        """Add the model label and the options."""
        parser.add_argument("label", metavar="app_label.Model", help="A registered model.")
        parser.add_argument(
            "--field",
            action="append",
            dest="fields",
            metavar="F",
            help="Only this registered field (repeatable).",
        )
        parser.add_argument(
            "--model",
            action="append",
            dest="model_ids",
            metavar="M",
            help="Only this registered Hub model id or model key (repeatable).",
        )
        parser.add_argument(
            "--batch-size",
            default="500",
            help=f"Objects per batch and transaction, 1 to {MAX_BATCH_SIZE} (default 500).",
        )
        parser.add_argument(
            "--since",
            metavar="DATE",
            help="Only objects whose date field is on or after DATE "
            "(YYYY-MM-DD or an ISO date-time).",
        )
        parser.add_argument(
            "--only-missing",
            action="store_true",
            help="Only fields and models with no request at all (a changed "
            "text is not sent again).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be created; write nothing."
        )
        parser.add_argument("--limit", help="Stop after this many objects (at least 1).")
        watch.add_wait_arguments(parser)

    def handle(
        self,
        *args,
        label,
        fields,
        model_ids,
        batch_size,
        since,
        only_missing,
        dry_run,
        limit,
        wait,
        timeout,
        **options,
    ):
        """Walk the objects in primary-key order; print one summary line (two with --wait)."""
        registration = self._registration(label)
        fields = self._subset("--field", fields, registration.fields)
        model_ids = self._subset("--model", model_ids, registration.model_ids)
        batch_size = whole_number("--batch-size", batch_size, 1, MAX_BATCH_SIZE)
        limit = None if limit is None else whole_number("--limit", limit, 1, MAX_LIMIT)
        if timeout is not None and not wait:
            raise bad_argument("--timeout only applies with --wait")
        timeout = (
            None if timeout is None else whole_number("--timeout", timeout, 1, watch.MAX_TIMEOUT)
        )
        if wait and dry_run:
            raise bad_argument("--wait cannot be used with --dry-run: nothing is created")
        queryset = registration.model._default_manager.order_by("pk")
        if since is not None:
            queryset = queryset.filter(
                **{f"{self._date_field(registration)}__gte": moment("--since", since)}
            )
        total = queryset.count()
        if limit is not None:
            total = min(total, limit)
        totals = {"created": 0, "unchanged": 0, "skipped": 0, "rejected": 0}
        scanned, last_pk, started = 0, None, time.monotonic()
        created_since = timezone.now()
        progress = Progress(
            self.stderr, total=total, unit="objects", description=registration.label
        )
        try:
            while limit is None or scanned < limit:
                size = batch_size if limit is None else min(batch_size, limit - scanned)
                page = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
                batch = list(page[:size])
                if not batch:
                    break
                counts = classify_objects(
                    batch,
                    registration,
                    fields=fields,
                    model_ids=model_ids,
                    only_missing=only_missing,
                    dry_run=dry_run,
                )
                for key, value in counts.items():
                    totals[key] += value
                scanned += len(batch)
                last_pk = batch[-1].pk
                progress.set(scanned, postfix=f"{totals['created']:,} requests created")
        except KeyboardInterrupt:
            raise CommandError(
                f"Interrupted after {scanned} objects ({totals['created']} requests created); "
                "run the same command again to resume.",
                returncode=130,
            ) from None
        finally:
            progress.close()
        verb = "would be created" if dry_run else "created"
        self.stdout.write(
            f"{registration.label}: {scanned} objects, {totals['created']} requests {verb}, "
            f"{totals['unchanged']} up to date, {totals['skipped']} objects skipped, "
            f"{totals['rejected']} too long, in {time.monotonic() - started:.1f} s."
        )
        if wait:
            self._wait(registration, fields, model_ids, created_since, timeout)

    def _wait(self, registration, fields, model_ids, created_since, timeout):
        """Watch the requests created since ``created_since`` until each is final."""
        requests = ClassificationRequest.objects.named(model_ids).filter(
            content_type=ContentType.objects.get_for_model(registration.model),
            source_field__in=fields,
            created_at__gte=created_since,
            parent__isnull=True,  # a split text counts once, as its parent
        )
        counts, seconds = watch.follow(
            requests,
            self.stderr,
            description="classified",
            interval=WAIT_INTERVAL,
            timeout=timeout,
            still="; the workers go on",
            stopped="Stopped waiting; the workers go on (textclass_status --watch shows them).",
        )
        self.stdout.write(summary(counts, watch.failures_by_code(requests), seconds))

    def _registration(self, label):
        model = installed_model("", label)
        registration = site.get(model)
        if registration is None:
            raise bad_argument(f"{model._meta.label} is not registered for classification")
        return registration

    def _subset(self, option, chosen, registered):
        if not chosen:
            return tuple(registered)
        unknown = [value for value in chosen if value not in registered]
        if unknown:
            raise bad_argument(
                f"{option} {short_repr(unknown[0])} is not registered; "
                f"choose from {', '.join(registered)}"
            )
        return tuple(dict.fromkeys(chosen))

    def _date_field(self, registration):
        model = registration.model
        name = registration.date_field or model._meta.get_latest_by
        if isinstance(name, str):
            return name.lstrip("-")
        for field in model._meta.concrete_fields:
            if isinstance(field, models.DateField) and getattr(field, "auto_now_add", False):
                return field.name
        raise bad_argument(
            f"--since needs a date field on {model._meta.label}: register it "
            "with date_field=..., or set Meta.get_latest_by"
        )


def summary(counts, failures, seconds):
    """``"Classified: 48 requests final in 12.3 s: 45 succeeded, 3 failed (http_503 2)..."``."""
    text = (
        f"Classified: {watch.finished(counts):,} requests final in {seconds:.1f} s: "
        f"{counts['succeeded']:,} succeeded, {counts['failed']:,} failed, "
        f"{counts['cancelled']:,} cancelled."
    )
    if failures:
        text += (
            " Failures by error code: "
            + ", ".join(f"{code or '(none)'} {n:,}" for code, n in failures)
            + "."
        )
    return text
