"""The bad-argument catalogue of the management commands (every one of the app's).

A bad argument ends with ONE line on stderr, nothing on stdout and exit status 2, and
changes nothing. Each case runs the command's real command-line path
(``run_from_argv``: argparse, the command's own checks, Django's error printing) in
this process, so that the rows it must not touch are the test's own; a few of the same
cases run in a subprocess in ``test_commands.py``.
"""

import pytest
from django.apps import apps
from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand
from django.db import connections

from django_textclass.management import watch
from django_textclass.management.commands import (
    textclass_backfill,
    textclass_cleanup,
    textclass_reclassify,
    textclass_rollup,
    textclass_status,
    textclass_sweep,
)
from django_textclass.models import ClassificationRequest, Status
from tests.api.helpers import stored

pytestmark = pytest.mark.django_db

#: Every numeric option: (command, arguments before it, option, minimum, maximum).
NUMERIC_OPTIONS = [
    ("textclass_sweep", [], "--limit", 1, textclass_sweep.MAX_LIMIT),
    ("textclass_cleanup", [], "--days", 0, textclass_cleanup.MAX_DAYS),
    ("textclass_cleanup", ["--days", "1"], "--batch-size", 1, textclass_cleanup.MAX_BATCH_SIZE),
    (
        "textclass_backfill",
        ["testapp.Comment"],
        "--batch-size",
        1,
        textclass_backfill.MAX_BATCH_SIZE,
    ),
    ("textclass_backfill", ["testapp.Comment"], "--limit", 1, textclass_backfill.MAX_LIMIT),
    ("textclass_rollup", [], "--max-days", 1, textclass_rollup.MAX_DAYS),
    (
        "textclass_backfill",
        ["testapp.Comment", "--wait"],
        "--timeout",
        1,
        watch.MAX_TIMEOUT,
    ),
    ("textclass_status", [], "--interval", 1, textclass_status.MAX_INTERVAL),
    ("textclass_status", ["--watch"], "--timeout", 1, watch.MAX_TIMEOUT),
    (
        "textclass_reclassify",
        ["--key", "sentiment"],
        "--batch-size",
        1,
        textclass_reclassify.MAX_BATCH_SIZE,
    ),
    (
        "textclass_reclassify",
        ["--key", "sentiment", "--wait"],
        "--timeout",
        1,
        watch.MAX_TIMEOUT,
    ),
]


def bad_numbers(minimum, maximum):
    """Values no numeric option takes, each with a word its one line must hold."""
    values = {
        str(minimum - 1): "at least",
        str(maximum + 1): "at most",
        "-1": "at least",
        str(2**63): "at most",
        str(10**29): "at most",
        "9" * 5000: "at most",
        "-" + "9" * 5000: "at least",
        "1.5": "whole number",
        "1e3": "whole number",
        "0x10": "whole number",
        "abc": "whole number",
        "": "whole number",
        " ": "whole number",
        "1 2": "whole number",
        "inf": "whole number",
        "nan": "whole number",
        "\u00bd": "whole number",
        "\x00": "whole number",
        "\udcff": "whole number",
        "--": "whole number",
    }
    return list(values.items())


def numeric_cases():
    for command, before, option, minimum, maximum in NUMERIC_OPTIONS:
        for value, words in bad_numbers(minimum, maximum):
            label = value if len(value) < 12 else f"{value[:6]}..{len(value)}chars"
            case_id = f"{command}-{option}-{label!r}"
            yield pytest.param(command, [*before, f"{option}={value}"], words, id=case_id)


#: Every other bad argument: (command, arguments, words of the one line).
OTHER_CASES = [
    *[
        ("textclass_backfill", [label], "installed model")
        for label in [
            "nope.Nothing",
            "",
            "\x00",
            "\udcff",
            "testapp",
            "testapp.Comment.extra",
            "a" * 10_000,
            "../x",
        ]
    ],
    ("textclass_backfill", ["testapp.SignalLog"], "not registered"),
    ("textclass_backfill", ["testapp.Comment", "--field", "hidden"], "--field"),
    ("textclass_backfill", ["testapp.Comment", "--field", "body\x00"], "--field"),
    ("textclass_backfill", ["testapp.Comment", "--model", "acme/x"], "--model"),
    ("textclass_backfill", ["testapp.Comment", "--model", "../../x?y#z"], "--model"),
    ("textclass_backfill", ["testapp.Comment", "--model", "\udcff"], "--model"),
    *[
        ("textclass_backfill", ["testapp.Comment", f"--since={value}"], "--since")
        for value in [
            "yesterday",
            "0000-01-01",
            "2026-02-30",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "\x00",
            "\udcff",
            "",
            "2026-01-01T25:00:00",
        ]
    ],
    ("textclass_backfill", ["testapp.Post", "--since", "2026-01-01"], "date field"),
    ("textclass_backfill", [], "arguments are required"),
    ("textclass_cleanup", [], "arguments are required"),
    ("textclass_rollup", ["--verify", "--rebuild"], "not allowed with"),
    *[
        (command, [*required, "--no-such-option"], "unrecognized arguments")
        for command, required in [
            ("textclass_backfill", ["testapp.Comment"]),
            ("textclass_cleanup", ["--days", "1"]),
            ("textclass_rollup", []),
            ("textclass_sweep", []),
        ]
    ],
    ("textclass_backfill", ["testapp.Comment", "--wait", "--dry-run"], "--dry-run"),
    ("textclass_backfill", ["testapp.Comment", "--timeout", "5"], "only applies with --wait"),
    ("textclass_status", ["--timeout", "5"], "only applies with --watch"),
    *[
        ("textclass_status", ["--model", value], "--model")
        for value in [
            "../x",
            "a b/c",
            "",
            "\x00",
            "\udcff",
            "https://x.y/m",
        ]
    ],
    *[
        ("textclass_status", ["--source", value], "--source")
        for value in [
            "nope.Nothing",
            "",
            "testapp",
            "\x00",
            "a" * 10_000,
        ]
    ],
    *[
        ("textclass_status", [f"--since={value}"], "--since")
        for value in [
            "yesterday",
            "2026-02-30",
            "\udcff",
            "",
            "9999-12-31T23:59:59-23:59",
        ]
    ],
    ("textclass_status", ["--no-such-option"], "unrecognized arguments"),
    ("textclass_reclassify", [], "arguments are required: --key"),
    *[
        ("textclass_reclassify", ["--key", value], "--key")
        for value in [
            "nope",
            "",
            "\x00",
            "\udcff",
            "a" * 10_000,
            "acme/sentiment",
        ]
    ],
    *[
        ("textclass_reclassify", ["--key", "sentiment", f"--{option}={value}"], f"--{option}")
        for option in ("since", "until")
        for value in [
            "yesterday",
            "2026-02-30",
            "\udcff",
            "",
            "9999-12-31T23:59:59-23:59",
        ]
    ],
    (
        "textclass_reclassify",
        ["--key", "sentiment", "--since", "2026-02-01", "--until", "2026-01-01"],
        "--since must be earlier than --until",
    ),
    ("textclass_reclassify", ["--key", "sentiment", "--timeout", "5"], "only applies with --wait"),
    ("textclass_reclassify", ["--key", "sentiment", "--wait", "--dry-run"], "--dry-run"),
    ("textclass_reclassify", ["--key", "sentiment", "--no-such-option"], "unrecognized arguments"),
    ("textclass_reclassify", ["--key", "sentiment", "surplus"], "unrecognized arguments"),
    *[
        ("textclass_check", ["--model", value], "--model")
        for value in [
            "../x",
            "a b/c",
            "",
            "\x00",
            "\udcff",
            "https://x.y/m",
            "sentimnet",
        ]
    ],
    *[
        ("textclass_check", ["--text", value], "--text")
        for value in [
            "",
            "   ",
            "\x00",
            "a\udcffb",
            "a" * 20_001,
        ]
    ],
    ("textclass_check", ["--no-such-option"], "unrecognized arguments"),
    ("textclass_check", ["surplus"], "unrecognized arguments"),
    ("textclass_status", ["surplus"], "unrecognized arguments"),
    ("textclass_sweep", ["surplus"], "unrecognized arguments"),
    ("textclass_rollup", ["surplus"], "unrecognized arguments"),
]


def other_cases():
    for command, arguments, words in OTHER_CASES:
        label = "_".join(repr(argument)[:20] for argument in arguments) or "no_arguments"
        yield pytest.param(command, arguments, words, id=f"{command}-{label}")


@pytest.fixture(autouse=True)
def registry(settings):
    """A model registry, so that textclass_reclassify gets past its --key."""
    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "MODELS": {"sentiment": {"MODEL": "acme/sentiment"}},
    }


@pytest.fixture
def rows(alice):
    """Requests of every kind a command could touch: old finished ones, overdue ones."""
    return [stored(alice, status=status) for status in Status.values]


def snapshot():
    counts = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("django_textclass").get_models()
    }
    states = list(
        ClassificationRequest.objects.order_by("pk").values_list(
            "pk", "status", "next_attempt_at", "lease_expires_at"
        )
    )
    return counts, states


def run(command, arguments, monkeypatch):
    """``manage.py command *arguments``, in process; returns the exit status."""
    # run_from_argv closes every connection when it ends: the test's transaction lives on one.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        load_command_class("django_textclass", command).run_from_argv(
            ["manage.py", command, *arguments]
        )
    return exit_info.value.code


@pytest.mark.parametrize(("command", "arguments", "words"), [*numeric_cases(), *other_cases()])
def test_bad_argument__one_line_exit_2_nothing_changed(
    command, arguments, words, rows, capsys, monkeypatch
):
    before = snapshot()

    status = run(command, arguments, monkeypatch)

    out, err = capsys.readouterr()
    assert status == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert words in lines[0], lines[0]
    assert "Traceback" not in err
    assert snapshot() == before


#: The commands' options that take a value and are not numbers (a new one must say so here).
TEXT_OPTIONS = {"--since", "--until", "--field", "--model", "--source", "--key", "--text"}


def test_catalogue__every_command_and_numeric_option_is_covered():
    ours = {name for name, app in get_commands().items() if app == "django_textclass"}
    covered = {command for command, *_ in NUMERIC_OPTIONS} | {
        command for command, *_ in OTHER_CASES
    }
    djangos = {
        option
        for action in BaseCommand().create_parser("manage.py", "x")._actions
        for option in action.option_strings
    }

    assert covered == ours
    for command in ours:
        parser = load_command_class("django_textclass", command).create_parser("manage.py", command)
        valued = {
            action.option_strings[0]
            for action in parser._actions
            if action.option_strings
            and action.nargs != 0
            and not set(action.option_strings) & djangos
        }
        listed = {option for name, _, option, *_ in NUMERIC_OPTIONS if name == command}
        assert valued - TEXT_OPTIONS == listed, command
