"""The demo (scripts/demo, example_project): its seeded month, and Ctrl-C stopping all of it.

The seed's texts are checked against the offline backend the demo classifies with, so its
first screen shows no confidently wrong label. The demo itself runs as a person runs it,
``scripts/demo | tee log`` in a shell, and is stopped the way a terminal stops it: SIGINT to
the whole foreground process group (the shell, the demo and ``tee`` alike).
"""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from django_textclass.backends.offline import Backend
from django_textclass.types import Parameters
from tests.helpers import ROOT, free_port, wait_for

sys.path.insert(0, str(ROOT / "example_project"))
from reviews import texts  # noqa: E402 - the example project's own package

LABEL = {"positive": "POSITIVE", "negative": "NEGATIVE"}


def test_seed_texts__each_gets_its_intended_label_from_the_offline_backend():
    written = texts.review_texts() + texts.comment_texts()
    rankings = Backend().classify_texts(
        [text for text, _ in written],
        Parameters(),
        model_id="m",
        use_cache=True,
        wait_for_model=False,
    )

    assert len(written) > 1000
    pairs = zip(written, rankings, strict=True)
    wrong = [
        (text, ranking.scores[0])
        for (text, sentiment), ranking in pairs
        if ranking.scores[0].label != LABEL[sentiment]
    ]
    assert wrong == []
    # Not by a hair either: every top score is at least 0.95.
    assert min(ranking.scores[0].score for ranking in rankings) >= 0.95


def test_seed_plan__a_few_hundred_reviews_spread_over_the_month():
    now = datetime(2026, 3, 31, 12, tzinfo=timezone.utc)

    reviews = texts.plan(now)

    assert 300 <= len(reviews) <= 600
    days = Counter((now - review["created_at"]).days for review in reviews)
    assert set(days) == set(range(30))  # every day of the month has reviews
    assert max(days.values()) >= 2 * min(days.values())  # and not the same number each day
    assert all(review["created_at"] < now for review in reviews)
    assert len({review["body"] for review in reviews}) == len(reviews)

    def negative_share(days_ago):  # of the robot vacuum's reviews, which had a bad batch
        chosen = [
            r["sentiment"]
            for r in reviews
            if r["product"] == "Robot vacuum" and (now - r["created_at"]).days in days_ago
        ]
        return chosen.count("negative") / len(chosen)

    assert negative_share(range(12, 16)) > negative_share(range(7)) + 0.3
    assert sum(c["body"] == texts.TROLL for r in reviews for c in r["comments"]) == 1


# --- the demo, run and stopped as a person does ------------------------------------------


def descendants(pid):
    """Every process below ``pid`` (children, grandchildren, ...), as ``{pid: start time}``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            parents[int(entry)] = (int(fields[1]), fields[19])  # ppid, start time
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, started) in parents.items():
            if ppid == parent and child not in found:
                found[child] = started
                frontier.append(child)
    return found


def alive(processes):
    """The ``{pid: start time}`` among ``processes`` still running (not zombies)."""
    living = {}
    for pid, started in processes.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[19] == started and fields[0] != "Z":
            living[pid] = stat.split(" ", 2)[1]
    return living


@pytest.fixture
def demo_run(tmp_path, settings):
    """``scripts/demo --port P | tee log`` in a shell of its own session; yields its details."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("reads the process tree from Linux's /proc")
    if settings.DB_KIND != "sqlite":
        # The demo runs on its own SQLite and broker whatever the suite's: once is enough.
        pytest.skip("runs with the SQLite run (the demo brings its own database and broker)")
    port = free_port()
    log = tmp_path / "log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEXTCLASS_TEST_", "DJANGO_", "DATABASE_URL", "HF_TOKEN", "CELERY_"))
    }
    env.update(
        DEMO_VENV=sys.prefix,
        DEMO_VAR_DIR=str(tmp_path / "var"),
        TEXTCLASS_BACKEND="offline",
        PYTHONUNBUFFERED="1",
    )
    terminal = (tmp_path / "terminal").open("wb")
    shell = subprocess.Popen(
        ["bash", "-c", f"{ROOT / 'scripts' / 'demo'} --port {port} | tee {log}"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a foreground job of its own
    )
    started = {}
    try:
        yield shell, port, log, tmp_path / "terminal", tmp_path / "var", started
    finally:
        for pid in alive(started):  # whatever the test left behind
            with_signal(pid, signal.SIGKILL)
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait(10)
        terminal.close()


def with_signal(pid, sig):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def answers(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2) as page:
            return page.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.integration
def test_demo__ctrl_c_in_a_pipe_stops_the_web_server_the_worker_and_beat(demo_run):
    shell, port, log, terminal, var, started = demo_run

    def screen():  # what the terminal shows: tee's copy of stdout, and everyone's stderr
        return terminal.read_text(errors="replace")

    def up():
        if shell.poll() is not None:
            pytest.fail(f"the demo exited with {shell.returncode}:\n{screen()[-3000:]}")
        return answers(port) and " ready." in screen() and "beat: Starting" in screen()

    wait_for(
        up,
        timeout=180,
        interval=0.5,
        message="the demo's web server, worker and beat",
        describe=lambda: screen()[-3000:],
    )
    started.update(descendants(shell.pid))
    commands = [
        Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        for pid in alive(started)
    ]
    assert any(" worker " in command for command in commands), commands
    assert any(" beat " in command for command in commands), commands
    # The commands it prints name the virtual environment's python, relative to where it runs.
    python = os.path.relpath(Path(sys.prefix) / "bin" / "python", ROOT)
    assert f"{python} example_project/manage.py shell -c" in log.read_text()

    os.killpg(shell.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
    shell.wait(60)
    deadline = time.monotonic() + 30
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert alive(started) == {}, f"still running after Ctrl-C: {alive(started)}"
    assert not answers(port)

    # What the demo showed meanwhile: a month of history, each label the one intended.
    with sqlite3.connect(var / "db.sqlite3") as db:
        rows = db.execute(
            "SELECT text, status, top_label, created_at FROM django_textclass_classificationrequest"
        ).fetchall()
    intended = dict(texts.review_texts() + texts.comment_texts())
    assert len(rows) >= 300
    assert len({created[:10] for _, _, _, created in rows}) >= 30
    succeeded = [(text, label) for text, status, label, _ in rows if status == "succeeded"]
    assert len(succeeded) >= len(rows) - 25  # the newest ones may still have been pending
    assert [(t, label) for t, label in succeeded if label != LABEL[intended[t]]] == []
    assert timedelta(days=29) <= (
        datetime.fromisoformat(max(r[3] for r in rows))
        - datetime.fromisoformat(min(r[3] for r in rows))
    )
