"""Shared by the app's management commands: one-line argument errors, number parsing."""

from django.core.management.base import BaseCommand, CommandError


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
                parser.exit(2, f"{parser.prog}: error: {message}\n")
            raise CommandError(f"Error: {message}")

        parser.error = error
        return parser


def whole_number(option, value, minimum):
    """Parse ``value`` as an integer >= ``minimum``, or raise a one-line CommandError."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CommandError(f"{option} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise CommandError(f"{option} must be at least {minimum}, not {number}")
    return number
