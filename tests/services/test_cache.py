"""The stored-result cache: which earlier answers a new request may reuse.

No broker and no worker: ``dispatch.send`` is replaced by a recorder (the one
publishing seam, ``sent``) and ``process()`` is called directly, as the task would.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_textclass import services
from django_textclass.models import ClassificationRequest, Status
from tests.fakes import (
    textclass_settings,
)
from tests.services.helpers import (
    MODEL,
    fresh,
)

pytestmark = pytest.mark.django_db


# --- the stored-result cache -----------------------------------------------------------


def test_process__identical_text_is_answered_from_the_stored_result(backend):
    first = services.submit("a good day", MODEL)
    services.process([first.pk])
    second = services.submit("a good day", MODEL)

    services.process([second.pk])

    assert len(backend.calls) == 1
    row = fresh(second)
    assert row.status == Status.SUCCEEDED
    assert row.reused_from_id == first.pk
    assert row.labels == fresh(first).labels
    assert row.top_label == fresh(first).top_label
    assert row.backend_ms is None


def test_process__only_uncached_texts_go_to_the_backend(backend):
    first = services.submit("a good day", MODEL)
    services.process([first.pk])
    cached, new = services.submit(["a good day", "a bad day"], MODEL)

    services.process([cached.pk, new.pk])

    assert [call.texts for call in backend.calls] == [["a good day"], ["a bad day"]]
    assert fresh(cached).reused_from_id == first.pk
    assert fresh(new).reused_from_id is None
    assert fresh(new).status == Status.SUCCEEDED


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"model": "acme/other"}, id="other-model"),
        pytest.param({"function_to_apply": "sigmoid"}, id="other-function"),
        pytest.param({"top_k": 1}, id="other-top-k"),
    ],
)
def test_process__different_model_or_parameters_are_not_reused(backend, changes):
    first = services.submit("a good day", MODEL)
    services.process([first.pk])
    second = services.submit("a good day", **{"model": MODEL, **changes})

    services.process([second.pk])

    assert len(backend.calls) == 2
    assert fresh(second).reused_from_id is None
    assert fresh(second).status == Status.SUCCEEDED


def test_process__a_result_from_another_backend_is_not_reused(backend):
    offline = services.submit("a good day", MODEL, backend="other")
    services.process([offline.pk])
    request = services.submit("a good day", MODEL)

    services.process([request.pk])

    assert [call.alias for call in backend.calls] == ["other", "default"]
    assert fresh(request).reused_from_id is None


def test_process__use_cache_false_bypasses_stored_results_and_api_cache(backend):
    first = services.submit("a good day", MODEL)
    services.process([first.pk])
    second = services.submit("a good day", MODEL, use_cache=False)

    services.process([second.pk])

    assert [call.use_cache for call in backend.calls] == [True, False]
    assert fresh(second).reused_from_id is None
    assert fresh(second).status == Status.SUCCEEDED


def test_process__cache_ttl_zero_disables_reuse(backend):
    with textclass_settings(CACHE_TTL=0):
        first = services.submit("a good day", MODEL)
        services.process([first.pk])
        second = services.submit("a good day", MODEL)
        services.process([second.pk])

    assert len(backend.calls) == 2
    assert fresh(second).reused_from_id is None


def test_process__expired_result_is_not_reused(backend):
    with textclass_settings(CACHE_TTL=60):
        first = services.submit("a good day", MODEL)
        services.process([first.pk])
        ClassificationRequest.objects.filter(pk=first.pk).update(
            finished_at=timezone.now() - timedelta(seconds=61)
        )
        second = services.submit("a good day", MODEL)
        services.process([second.pk])

    assert len(backend.calls) == 2
    assert fresh(second).reused_from_id is None


def test_process__result_within_ttl_is_reused(backend):
    with textclass_settings(CACHE_TTL=60):
        first = services.submit("a good day", MODEL)
        services.process([first.pk])
        ClassificationRequest.objects.filter(pk=first.pk).update(
            finished_at=timezone.now() - timedelta(seconds=50)
        )
        second = services.submit("a good day", MODEL)
        services.process([second.pk])

    assert len(backend.calls) == 1
    assert fresh(second).reused_from_id == first.pk


def test_process__cache_ttl_none_keeps_results_forever(backend):
    with textclass_settings(CACHE_TTL=None):
        first = services.submit("a good day", MODEL)
        services.process([first.pk])
        ClassificationRequest.objects.filter(pk=first.pk).update(
            finished_at=timezone.now() - timedelta(days=3650)
        )
        second = services.submit("a good day", MODEL)
        services.process([second.pk])

    assert len(backend.calls) == 1
    assert fresh(second).reused_from_id == first.pk
