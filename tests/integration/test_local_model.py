"""The local model backend end to end: a real Celery worker (a prefork pool of two) classifies
with a tiny model the test saves; a pool process loads it, never the worker's parent."""

import math
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings

import django_textclass
from django_textclass.models import Status
from tests.backends.local_model import LABELS, TEXTS, build_model, expected_scores
from tests.integration.helpers import finished

pytestmark = [pytest.mark.integration, pytest.mark.local_model]

MODEL_ID = "acme/tiny-sentiment"
#: The line Celery's logging writes (the test settings' console handler writes it once more,
#: without the prefix).
LOADED = re.compile(
    r"INFO/\S+\] Backend 'local' loaded the model in (\S+) on cpu with "
    r"1 thread\(s\), process (\d+)"
)


@pytest.fixture(scope="session")
def model_folder():
    # Where the workers' "local" alias reads it (tests/settings.py), under the run's folder.
    folder = Path(django_settings.LOCAL_MODEL_BACKENDS["local"]["OPTIONS"]["MODEL_PATH"])
    if not (folder / "config.json").exists():
        build_model(folder, seed=3)
    return folder


@pytest.fixture
def local_aliases(settings):
    """The aliases the workers have, in this process too (submit checks the alias)."""
    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "BACKENDS": {**settings.TEXTCLASS["BACKENDS"], **django_settings.LOCAL_MODEL_BACKENDS},
    }


def test_worker__classifies_with_the_model_loaded_once_in_a_pool_process(
    worker, model_folder, local_aliases
):
    requests = django_textclass.classify(TEXTS, model=MODEL_ID, backend="local")

    rows = finished(*requests, timeout=180)

    for text, row in zip(TEXTS, rows, strict=True):
        assert row.status == Status.SUCCEEDED, (row.error_code, row.error_message)
        assert row.backend == "local" and row.model_id == MODEL_ID
        assert [item["label"] for item in row.labels] == sorted(
            LABELS, key=lambda label: -next(i["score"] for i in row.labels if i["label"] == label)
        )
        expected = expected_scores(model_folder, text)
        for item in row.labels:
            assert math.isclose(item["score"], expected[item["label"]], abs_tol=1e-5)
        assert row.top_label == max(expected, key=expected.get)
        assert row.attempts == 1 and row.backend_ms is not None
    # Loaded in the pool's processes, never in the worker's parent, once per process.
    loads = [(path, int(pid)) for path, pid in LOADED.findall(Path(worker.log_path).read_text())]
    assert loads, worker.tail()
    assert {path for path, _ in loads} == {str(model_folder)}
    pids = [pid for _, pid in loads]
    assert worker.process.pid not in pids
    assert len(pids) == len(set(pids))


def test_worker__a_missing_model_folder_fails_the_request_as_configuration(worker, local_aliases):
    (request,) = django_textclass.classify(["a good day"], model=MODEL_ID, backend="local-missing")

    (row,) = finished(request, timeout=120)

    missing = django_settings.LOCAL_MODEL_BACKENDS["local-missing"]["OPTIONS"]["MODEL_PATH"]
    assert row.status == Status.FAILED
    assert row.error_code == "configuration"
    assert f"{missing} is not a folder" in row.error_message
    assert row.attempts == 1
