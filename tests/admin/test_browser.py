"""A real browser opens the dashboard of the running example project.

Headless Chromium (Debian's ``chromium`` package) loads the page served by
``example_project/manage.py runserver`` over a throw-away SQLite database with seeded
history, logged in through a session cookie (see ``browser.py`` for why the DevTools
pipe). The test checks the charts and their tables are in the rendered DOM and that
the screenshot is a real image. Outside CI a missing Chromium skips this one test;
with ``CI=true`` it fails.

Set ``TEXTCLASS_SAVE_SCREENSHOT=docs/img/dashboard.png`` to keep the screenshot.
"""

import html as html_module
import json
import os
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.admin.browser import Browser, find_chromium
from tests.helpers import free_port, missing

ROOT = Path(__file__).resolve().parents[2]
# All time: the seeded history spans two weeks; the default view is the past week.
DASHBOARD = (
    "/admin/django_textclass/classificationrequest/dashboard/"
    "?created_at__gte=1970-01-01+00%3A00%3A00%2B00%3A00"
)


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        missing("Chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def example_site(tmp_path_factory):
    """The example project on a free port with seeded history; yields (url, cookie)."""
    folder = tmp_path_factory.mktemp("example-site")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "example_project"), str(ROOT)]),
        "TEXTCLASS_BACKEND": "offline",
        "CELERY_BROKER_URL": "memory://",
    }
    env.pop("HF_TOKEN", None)
    seeded = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "admin" / "example_seed.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    session = json.loads(seeded.stdout.strip().splitlines()[-1])
    port = free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "example_project" / "manage.py"),
            "runserver",
            "--noreload",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/admin/login/", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "runserver did not come up:\n"
                        + (folder / "server.log").read_text(errors="replace")[-3000:]
                    )
                time.sleep(0.2)
        cookie = {
            "name": session["cookie_name"],
            "value": session["session_key"],
            "domain": "127.0.0.1",
            "path": "/",
            "httpOnly": True,
        }
        yield base, cookie
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_dashboard_in_a_real_browser__charts_and_tables_rendered(chromium, example_site):
    base, cookie = example_site
    browser = Browser(chromium)
    try:
        html, png = browser.open_page(base + DASHBOARD, cookies=[cookie])
        # A click on the "failed" bar: the history of the failed requests, with their count.
        failed = re.search(r'<a class="textclass-link" href="([^"]*status__exact=failed)"', html)
        assert failed, "the failed bar has no link"
        history, _shot = browser.open_page(base + html_module.unescape(failed.group(1)))
    finally:
        browser.close()

    assert "<title>Label distributions" in html, html[:500]  # logged in, not the login page
    assert html.count('<svg class="textclass-chart" role="img"') == 8
    assert html.count('<table class="textclass-table">') == 8
    for title in (
        "Share of each top label",
        "Top labels over time",
        "Confidence of the top label",
        "Requests by status",
        "Latency percentiles",
        "Throughput",
        "Share of each top label over time",
        "Failures by error code",
    ):
        assert title in html
    assert html.count('<a class="textclass-link"') > 40  # the bars are links
    assert "Select classification request to view" in history  # the changelist, logged in
    assert 'class="textclass-badge" style="background:#D55E00">failed' in history
    assert '">succeeded</span>' not in history  # only failed rows listed
    assert "read from the daily roll-up" in html  # the closed days of the week
    assert "No data for these filters." not in html  # every chart has bars
    assert html.count("<rect ") > 50
    assert 'id="changelist-filter"' in html  # the same filters as the changelist
    width, height = png_size(png)
    assert (width, height) == (1400, 2200)
    assert len(png) > 40_000  # a blank page compresses to a few kB
    target = os.environ.get("TEXTCLASS_SAVE_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(png)


#: Measured in the page: which columns of the history are inside its visible box, and whether
#: the model id is cut (its box narrower than its text) with the whole id in its title.
MEASURE_HISTORY = """(() => {
  const box = document.querySelector("#changelist .results").getBoundingClientRect();
  const visible = {};
  for (const th of document.querySelectorAll("#result_list thead th[class*=column-]")) {
    const name = [...th.classList].find(c => c.startsWith("column-")).slice(7);
    const r = th.getBoundingClientRect();
    visible[name] = r.left >= box.left - 1 && r.right <= box.right + 1;
  }
  const model = document.querySelector("#result_list .textclass-model");
  return {visible, cut: model.scrollWidth > model.clientWidth, title: model.title,
          text: model.textContent};
})()"""


def test_history_at_1400_pixels__the_main_columns_in_view_and_the_model_id_cut(
    chromium, example_site
):
    base, cookie = example_site
    browser = Browser(chromium)
    try:
        html, png = browser.open_page(
            base + "/admin/django_textclass/classificationrequest/",
            cookies=[cookie],
            script=MEASURE_HISTORY,
        )
        measured = browser.evaluated
    finally:
        browser.close()

    assert "Select classification request to view" in html
    assert png_size(png)[0] == 1400
    visible = measured["visible"]
    assert all(
        visible[name] for name in ("created_at", "short_text", "top_result", "status_badge")
    ), visible
    assert measured["cut"]  # shown with an ellipsis ...
    assert measured["title"] == measured["text"]  # ... and whole in its title
    assert measured["title"] in {
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        "cardiffnlp/twitter-roberta-base-sentiment-latest",
    }
