"""Shared by the app's management commands: one-line argument errors, numbers and dates.

Every bad argument, whether argparse or the command finds it, ends the same way from the
command line: one line on stderr and exit status 2 (argparse's own convention).
"""

from datetime import datetime
from datetime import timezone as dt_timezone

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

#: The exit status of a bad argument.
BAD_ARGUMENT = 2


def bad_argument(message):
    """A :class:`CommandError` for a bad argument: one line, exit status 2."""
    return CommandError(message, returncode=BAD_ARGUMENT)


class OneLineErrorsCommand(BaseCommand):
    """A command whose bad arguments end in ONE line on stderr and exit status 2.

    argparse prints the whole usage before its error; a script or cron log reads
    better with just the reason (``--help`` still shows the usage).
    """

    def create_parser(self, prog_name, subcommand, **kwargs):
        """Return the usual parser, with :meth:`error` printing one line."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message):
            if parser.called_from_command_line:
                parser.exit(BAD_ARGUMENT, f"{parser.prog}: error: {message}\n")
            raise bad_argument(f"Error: {message}")

        parser.error = error
        return parser


def whole_number(option, value, minimum, maximum):
    """Parse ``value`` as an integer from ``minimum`` to ``maximum``.

    Every numeric option has a ceiling: past it a number would overflow a date, a SQL
    ``LIMIT`` or a batch held in memory, far from the argument that caused it.

    Raises:
        CommandError: (exit status 2) not a whole number, or out of range.
    """
    if isinstance(value, (bool, float)):  # from call_command(): True is not 1, 2.5 not 2
        raise bad_argument(f"{option} must be a whole number, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        text = value.strip() if isinstance(value, str) else ""
        if text.lstrip("+-").isdigit():  # digits past int()'s own limit of 4300
            bound = f"at least {minimum}" if text.startswith("-") else f"at most {maximum}"
            raise bad_argument(f"{option} must be {bound}, not {short_repr(value)}") from None
        raise bad_argument(f"{option} must be a whole number, not {short_repr(value)}") from None
    if number < minimum:
        raise bad_argument(f"{option} must be at least {minimum}, not {short_repr(number)}")
    if number > maximum:
        raise bad_argument(f"{option} must be at most {maximum}, not {short_repr(number)}")
    return number


def short_repr(value, limit=60):
    """``repr(value)``, cut to ``limit`` characters: the line stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def moment(option, value):
    """Parse ``value`` as a date (``YYYY-MM-DD``, midnight local time) or an ISO date-time.

    Returns an aware datetime in UTC, as the database compares it.

    Raises:
        CommandError: (exit status 2) not a date, or outside the years 1 to 9999.
    """
    try:
        found = parse_datetime(value)
        if found is None and (day := parse_date(value)) is not None:
            found = datetime.combine(day, datetime.min.time())
        if found is not None:
            if timezone.is_naive(found):
                found = timezone.make_aware(found)
            # In UTC, as the database compares it: an offset may push it past year 1-9999.
            found = found.astimezone(dt_timezone.utc)
    except (ValueError, OverflowError):
        found = None
    if found is None:
        raise bad_argument(
            f"{option} must be a date (YYYY-MM-DD) or an ISO date-time "
            f"between the years 1 and 9999, not {short_repr(value)}"
        )
    return found


def installed_model(option, label):
    """The model class named ``app_label.Model``.

    Raises:
        CommandError: (exit status 2) no such installed model.
    """
    from django.apps import apps

    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        where = f"{option} " if option else ""
        raise bad_argument(
            f"{where}{short_repr(label)} is not an installed model (app_label.Model)"
        ) from None
