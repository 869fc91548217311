"""``manage.py textclass_check``: call every configured model once, say what answered and how.

A deployment health check: exit status 0 when every model answered, 1 when any failed, 2 for
a bad argument. ``--json`` prints one JSON document for scripts. The token never appears.
"""

import json

from django.core.management.base import CommandError

from django_textclass.exceptions import InvalidInputError
from django_textclass.management import probe
from django_textclass.management.commands._utils import (
    OneLineErrorsCommand,
    bad_argument,
    short_repr,
)
from django_textclass.types import validate_text


class Command(OneLineErrorsCommand):
    """Probe each model of ``TEXTCLASS["MODELS"]`` (or the default model) through its backend."""

    help = (
        "Call every configured model once with a probe text, straight through its backend "
        "(not through the queue; nothing is stored), and print for each: whether it answered, "
        "the shape of the answer, its labels and the latency; or the error with its likely "
        "fix. Every key of TEXTCLASS['MODELS'] is checked; without a registry, DEFAULT_MODEL "
        "on DEFAULT_BACKEND. Exit status 1 if any model failed."
    )
    requires_system_checks = []  # a broken setting is reported per model, not refused

    def add_arguments(self, parser):
        """Add --model, --text and --json."""
        parser.add_argument(
            "--model",
            metavar="KEY",
            help="Check only this key of TEXTCLASS['MODELS'] (or this Hub "
            "model id, on DEFAULT_BACKEND).",
        )
        parser.add_argument(
            "--text",
            default=probe.DEFAULT_TEXT,
            help=f"The probe text (default {probe.DEFAULT_TEXT!r}).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="Print one JSON document instead of text.",
        )

    def handle(self, *args, model, text, as_json, **options):
        """Probe, print, and end with status 1 if any model failed."""
        try:
            validate_text(text, "--text")
        except InvalidInputError as exc:
            raise bad_argument(str(exc)) from None
        try:
            chosen = probe.targets(model)
        except InvalidInputError as exc:
            raise bad_argument(f"--model {short_repr(model)}: {exc.reason}") from None
        outcomes = [probe.probe(name, target, text) for name, target in chosen]
        failed = [outcome for outcome in outcomes if not outcome.ok]
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "ok": not failed,
                        "checked": len(outcomes),
                        "failed": len(failed),
                        "models": [outcome.as_dict() for outcome in outcomes],
                    },
                    indent=2,
                )
            )
        else:
            for outcome in outcomes:
                self.stdout.write(report(outcome))
            self.stdout.write(
                f"{len(outcomes)} checked: {len(outcomes) - len(failed)} "
                f"answered, {len(failed)} failed."
            )
        if failed:
            names = ", ".join(outcome.name for outcome in failed)
            raise CommandError(f"{len(failed)} of {len(outcomes)} failed: {names}.", returncode=1)


def report(outcome):
    """A few lines of text about one :class:`~django_textclass.management.probe.Outcome`."""
    where = (
        f"backend {outcome.backend!r}, {outcome.model_id}" if outcome.backend else "not configured"
    )
    if outcome.revision:
        sent = "sent" if outcome.revision_sent else "a label only: this backend loads no revisions"
        where += f", revision {outcome.revision} ({sent})"
    lines = [f"{outcome.name}: {where}"]
    if outcome.url:
        lines.append(f"  url: {outcome.url}")
    if outcome.ok:
        labels = ", ".join(f"{item['label']} {item['score']:.4f}" for item in outcome.ranking)
        lines += [
            f"  OK: answered in {outcome.latency_ms} ms",
            f"  answer: {outcome.shape}",
            f"  labels: {labels}",
        ]
        return "\n".join(lines)
    error = outcome.error
    took = "" if outcome.latency_ms is None else f" after {outcome.latency_ms} ms"
    lines += [
        f"  FAILED ({error['code']}){took}: {error['message']}",
        f"  likely fix: {error['hint']}",
    ]
    return "\n".join(lines)
