"""``manage.py textclass_backfill app_label.Model``: classify existing objects in bulk."""

import time
from datetime import datetime
from datetime import timezone as dt_timezone

from django.apps import apps
from django.core.management.base import CommandError
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from django_textclass.content.registry import site
from django_textclass.content.sync import classify_objects
from django_textclass.management.commands._utils import (
    OneLineErrorsCommand,
    bad_argument,
    short_repr,
    whole_number,
)

BAR_WIDTH = 30
#: Most objects per batch: one batch is read, and its requests stored, in one transaction.
MAX_BATCH_SIZE = 10_000
#: Most objects one run may walk (--limit).
MAX_LIMIT = 10**12


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
        parser.add_argument("--field", action="append", dest="fields", metavar="F",
                            help="Only this registered field (repeatable).")
        parser.add_argument("--model", action="append", dest="model_ids", metavar="M",
                            help="Only this registered Hub model id (repeatable).")
        parser.add_argument("--batch-size", default="500",
                            help=f"Objects per batch and transaction, 1 to {MAX_BATCH_SIZE} "
                            "(default 500).")
        parser.add_argument("--since", metavar="DATE",
                            help="Only objects whose date field is on or after DATE "
                            "(YYYY-MM-DD or an ISO date-time).")
        parser.add_argument("--only-missing", action="store_true",
                            help="Only fields and models with no request at all (a changed "
                            "text is not sent again).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Count what would be created; write nothing.")
        parser.add_argument("--limit", help="Stop after this many objects (at least 1).")

    def handle(self, *args, label, fields, model_ids, batch_size, since, only_missing,
               dry_run, limit, **options):
        """Walk the objects in primary-key order; print one summary line."""
        registration = self._registration(label)
        fields = self._subset("--field", fields, registration.fields)
        model_ids = self._subset("--model", model_ids, registration.model_ids)
        batch_size = whole_number("--batch-size", batch_size, 1, MAX_BATCH_SIZE)
        limit = None if limit is None else whole_number("--limit", limit, 1, MAX_LIMIT)
        queryset = registration.model._default_manager.order_by("pk")
        if since is not None:
            queryset = queryset.filter(**{
                f"{self._date_field(registration)}__gte": self._parse_since(since)
            })
        total = queryset.count()
        if limit is not None:
            total = min(total, limit)
        show_bar = self.stdout.isatty()
        totals = {"created": 0, "unchanged": 0, "skipped": 0, "rejected": 0}
        scanned, last_pk, started = 0, None, time.monotonic()
        try:
            while limit is None or scanned < limit:
                size = batch_size if limit is None else min(batch_size, limit - scanned)
                page = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
                batch = list(page[:size])
                if not batch:
                    break
                counts = classify_objects(batch, registration, fields=fields,
                                          model_ids=model_ids, only_missing=only_missing,
                                          dry_run=dry_run)
                for key, value in counts.items():
                    totals[key] += value
                scanned += len(batch)
                last_pk = batch[-1].pk
                if show_bar:
                    self._bar(scanned, total)
        except KeyboardInterrupt:
            if show_bar:
                self.stdout.write("")
            raise CommandError(
                f"Interrupted after {scanned} objects ({totals['created']} requests created); "
                "run the same command again to resume.", returncode=130,
            ) from None
        if show_bar:
            self.stdout.write("")
        verb = "would be created" if dry_run else "created"
        self.stdout.write(
            f"{registration.label}: {scanned} objects, {totals['created']} requests {verb}, "
            f"{totals['unchanged']} up to date, {totals['skipped']} objects skipped, "
            f"{totals['rejected']} too long, in {time.monotonic() - started:.1f} s."
        )

    def _registration(self, label):
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            raise bad_argument(
                f"{short_repr(label)} is not an installed model (app_label.Model)"
            ) from None
        registration = site.get(model)
        if registration is None:
            raise bad_argument(f"{model._meta.label} is not registered for classification")
        return registration

    def _subset(self, option, chosen, registered):
        if not chosen:
            return tuple(registered)
        unknown = [value for value in chosen if value not in registered]
        if unknown:
            raise bad_argument(f"{option} {short_repr(unknown[0])} is not registered; "
                               f"choose from {', '.join(registered)}")
        return tuple(dict.fromkeys(chosen))

    def _date_field(self, registration):
        model = registration.model
        name = registration.date_field or model._meta.get_latest_by
        if isinstance(name, str):
            return name.lstrip("-")
        for field in model._meta.concrete_fields:
            if isinstance(field, models.DateField) and getattr(field, "auto_now_add", False):
                return field.name
        raise bad_argument(f"--since needs a date field on {model._meta.label}: register it "
                           "with date_field=..., or set Meta.get_latest_by")

    def _parse_since(self, value):
        try:
            moment = parse_datetime(value)
            if moment is None and (day := parse_date(value)) is not None:
                moment = datetime.combine(day, datetime.min.time())
            if moment is not None:
                if timezone.is_naive(moment):
                    moment = timezone.make_aware(moment)
                # In UTC, as the database compares it: an offset may push it past year 1-9999.
                moment = moment.astimezone(dt_timezone.utc)
        except (ValueError, OverflowError):
            moment = None
        if moment is None:
            raise bad_argument(f"--since must be a date (YYYY-MM-DD) or an ISO date-time "
                               f"between the years 1 and 9999, not {short_repr(value)}")
        return moment

    def _bar(self, done, total):
        share = done / total if total else 1.0
        filled = round(BAR_WIDTH * min(1.0, share))
        self.stdout.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}",
                          ending="")
        self.stdout.flush()
