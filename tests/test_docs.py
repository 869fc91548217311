"""The docs against the code: the system check ids they document, and the README's links."""

import ast
import configparser
import re

import pytest

from tests.helpers import ROOT

DOCS = ROOT / "docs"
ID = re.compile(r"textclass\.[EW]\d{3}")
#: A check id in the docs: `textclass.E001`, `E001`, and ranges such as `E020`-`E027`.
MENTION = re.compile(r"`(?:textclass\.)?([EW]\d{3})`(?:\s*-\s*`([EW]\d{3})`)?")
#: Which doc's tables list which families (the id's middle digit: E0[1]0); 3 is health, 4 the
#: model registry, 5 the local model backend.
TABLES = {"settings.md": "035", "api.md": "1", "content.md": "2", "models.md": "4"}


def code_ids():
    """Every check id the package can report: string constants that are exactly an id."""
    found = set()
    for path in (ROOT / "django_textclass").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and ID.fullmatch(node.value)
            ):
                found.add(node.value)
    return found


def mentioned(text):
    """The ids ``text`` names, ranges expanded (``E020``-``E029`` names ten)."""
    ids = set()
    for first, last in MENTION.findall(text):
        if not last:
            ids.add(f"textclass.{first}")
            continue
        assert first[0] == last[0] and first[:-1] == last[:-1] and first < last, (first, last)
        ids.update(f"textclass.{first[0]}{n:03d}" for n in range(int(first[1:]), int(last[1:]) + 1))
    return ids


def table_ids(text):
    """The ids that start a row of a Markdown table."""
    return set(re.findall(r"^\| `(textclass\.[EW]\d{3})`", text, flags=re.M))


def test_code_ids__found():
    ids = code_ids()

    assert {"textclass.E001", "textclass.W007", "textclass.E015", "textclass.E029"} <= ids


@pytest.mark.parametrize(("doc", "family"), TABLES.items())
def test_check_tables__list_exactly_the_ids_of_their_family(doc, family):
    expected = {i for i in code_ids() if i[len("textclass.E0")] in family}

    assert table_ids((DOCS / doc).read_text()) == expected


@pytest.mark.parametrize("doc", ["settings.md", "changelog.md"])
def test_every_check_id__named_in_the_settings_reference_and_the_changelog(doc):
    assert mentioned((DOCS / doc).read_text()) >= code_ids()


@pytest.mark.parametrize(
    "path", sorted([*DOCS.glob("*.md"), ROOT / "README.md"]), ids=lambda path: path.name
)
def test_docs__name_no_check_id_that_does_not_exist(path):
    assert mentioned(path.read_text()) - code_ids() == set()


def test_installation__explains_each_warning_a_project_may_see():
    text = (DOCS / "installation.md").read_text()

    assert {
        "textclass.W002",
        "textclass.W006",
        "textclass.W007",
        "textclass.W010",
        "textclass.W011",
        "textclass.W012",
        "textclass.E014",
        "textclass.E015",
    } <= (table_ids(text))


def source_url():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    urls = dict(
        line.split(" = ", 1) for line in config["metadata"]["project_urls"].strip().splitlines()
    )
    return urls["Source"]


def test_readme__every_link_absolute_and_to_a_file_that_exists():
    # The README is also the package index page, where a relative link leads nowhere.
    source = source_url()
    links = re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())

    assert links
    assert not [link for link in links if not link.startswith("https://")]
    ours = [link for link in links if link.startswith(source + "/")]
    assert len(ours) >= 20
    for link in ours:
        path = re.sub(r"^/(blob|raw)/main/", "", link[len(source) :]).split("#")[0]
        assert (ROOT / path).is_file(), link


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.md")), ids=lambda path: path.name)
def test_docs__do_not_call_a_shipped_feature_future(path):
    # pipeline.md and installation.md once called the REST API, the dashboard, signals, rules
    # and the commands "not in this release" / "not part of 0.1.0"; all of them ship.
    text = path.read_text().lower()

    assert "not in this release" not in text
    assert "not part of 0.1.0" not in text
    assert "when the api arrives" not in text
