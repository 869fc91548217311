"""Shared by the app's management commands: one-line argument errors, number parsing.

Every bad argument, whether argparse or the command finds it, ends the same way from the
command line: one line on stderr and exit status 2 (argparse's own convention).
"""

from django.core.management.base import BaseCommand, CommandError

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
