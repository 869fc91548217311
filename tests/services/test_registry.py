"""Keys of the model registry through submit() and the worker: what a request records, which
stored answers it may reuse, and what reaches the backend.

The backends are the scripted one (in process), except where a URL must reach a real HTTP
server: then the Hugging Face backend calls the loopback emulator.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_textclass import dispatch, services
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError
from django_textclass.models import ClassificationRequest, Status, text_hash
from django_textclass.services import work
from django_textclass.types import Parameters
from tests.fakes import textclass_settings
from tests.services.helpers import fresh

pytestmark = pytest.mark.django_db

SST2 = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
NEWER = "acme/sentiment-v2"


def registry(model=SST2, revision="714eb0f", backend=None, parameters=None):
    entry = {"MODEL": model, "REVISION": revision, "PARAMETERS": parameters or {"top_k": 2}}
    if revision is None:
        del entry["REVISION"]
    if backend is not None:
        entry["BACKEND"] = backend
    from django.conf import settings

    # Merged over the scripted backends the services' conftest installed.
    return textclass_settings(MODELS={"sentiment": entry}, BACKENDS=settings.TEXTCLASS["BACKENDS"])


# --- submit ---------------------------------------------------------------------------------


def test_submit__a_key_records_key_model_revision_backend_and_defaults():
    with registry(backend="other"):
        row = services.submit("a good day", "sentiment")

    row = fresh(row)
    assert (row.model_key, row.model_id, row.revision, row.backend) == (
        "sentiment",
        SST2,
        "714eb0f",
        "other",
    )
    assert (row.function_to_apply, row.top_k) == ("", 2)


def test_submit__parameters_given_replace_the_key_defaults():
    with registry():
        row = services.submit("a good day", "sentiment", top_k=1, function_to_apply="sigmoid")

    assert (fresh(row).top_k, fresh(row).function_to_apply) == (1, "sigmoid")


def test_submit__a_model_id_records_no_key_and_no_revision():
    with registry():
        row = services.submit("a good day", SST2)

    assert (fresh(row).model_key, fresh(row).revision, fresh(row).model_id) == ("", "", SST2)


def test_submit__default_model_naming_a_key(settings):
    with registry():
        settings.TEXTCLASS = {**settings.TEXTCLASS, "DEFAULT_MODEL": "sentiment"}
        row = services.submit("a good day")

    assert fresh(row).model_key == "sentiment"


def test_submit__a_split_text_s_chunks_carry_the_key_and_revision():
    with registry():
        parent = services.submit(
            "word " * 30, "sentiment", long_text={"POLICY": "split", "MAX_LENGTH": 40}
        )

    chunks = ClassificationRequest.objects.filter(parent=parent)
    assert chunks.count() >= 3
    assert set(chunks.values_list("model_key", "revision", "model_id")) == {
        ("sentiment", "714eb0f", SST2)
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": "sentiment", "backend": "other"}, "backend"),
        ({"model": "https://abc.endpoints.huggingface.cloud/"}, "model"),
        ({"model": "no such key"}, "model"),
    ],
)
def test_submit__refused_and_nothing_stored(kwargs, field):
    with registry(), pytest.raises(InvalidInputError) as info:
        services.submit("a good day", **kwargs)

    assert info.value.field == field
    assert ClassificationRequest.objects.count() == 0


def test_submit__a_key_whose_entry_is_wrong__configuration_error_nothing_stored():
    with (
        textclass_settings(MODELS={"sentiment": {"MODEL": SST2, "BACKEND": "gone"}}),
        pytest.raises(TextClassConfigurationError, match="BACKEND 'gone'"),
    ):
        services.submit("a good day", "sentiment")

    assert ClassificationRequest.objects.count() == 0


# --- the worker: the revision reaches the backend, and keys the cache ---------------------


def test_process__the_revision_goes_to_a_backend_that_loads_revisions(backend):
    with registry():
        row = services.submit("a good day", "sentiment")
        services.process([row.pk])

    (call,) = backend.calls
    assert (call.model_id, call.revision, call.parameters) == (SST2, "714eb0f", Parameters(None, 2))
    assert fresh(row).status == Status.SUCCEEDED


def test_process__no_revision_is_sent_as_none(backend):
    with registry(revision=None):
        services.process([services.submit("a good day", "sentiment").pk])

    assert backend.calls[0].revision is None


def test_process__same_key_model_and_revision__the_stored_answer_is_reused(backend):
    with registry():
        first = services.submit("a good day", "sentiment")
        services.process([first.pk])
        second = services.submit("a good day", "sentiment")
        services.process([second.pk])

    assert len(backend.calls) == 1
    assert fresh(second).reused_from_id == first.pk


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"revision": "9f3c2aa"}, id="new-revision"),
        pytest.param({"model": NEWER}, id="new-model"),
    ],
)
def test_process__a_key_moved_to_another_model_or_revision__the_cache_misses(backend, change):
    with registry():
        first = services.submit("a good day", "sentiment")
        services.process([first.pk])
    with registry(**change):
        second = services.submit("a good day", "sentiment")
        services.process([second.pk])

    assert len(backend.calls) == 2
    row = fresh(second)
    assert row.reused_from_id is None and row.status == Status.SUCCEEDED
    assert (row.model_id, row.revision) == (
        change.get("model", SST2),
        change.get("revision", "714eb0f"),
    )


def test_process__a_model_id_without_revision_does_not_take_a_revision_s_answer(backend):
    with registry(parameters={}):
        keyed = services.submit("a good day", "sentiment")
        services.process([keyed.pk])
        plain = services.submit("a good day", SST2)
        services.process([plain.pk])

    assert len(backend.calls) == 2
    assert fresh(plain).reused_from_id is None


def test_process__two_revisions_in_one_message__two_groups_two_calls(backend):
    with registry():
        old = services.submit("a good day", "sentiment")
    with registry(revision="9f3c2aa"):
        new = services.submit("a good day", "sentiment")
        services.process([old.pk, new.pk])

    assert sorted(call.revision for call in backend.calls) == ["714eb0f", "9f3c2aa"]
    assert fresh(old).reused_from_id is None and fresh(new).reused_from_id is None


def test_twins_in_flight__a_twin_of_another_revision_is_not_followed(backend):
    with registry():
        leader = services.submit("a good day", "sentiment")
    with registry(revision="9f3c2aa"):
        twin = services.submit("a good day", "sentiment")
    services.claim([leader.pk])  # another run is calling the API for it now
    token, claimed = services.claim([twin.pk])

    goes, follows = work.twins_in_flight(
        token, "default", SST2, Parameters(None, 2), claimed, revision="9f3c2aa"
    )
    same_goes, same_follows = work.twins_in_flight(
        token, "default", SST2, Parameters(None, 2), claimed, revision="714eb0f"
    )

    assert [row.pk for row in goes] == [twin.pk] and follows == []
    assert same_goes == [] and [row.pk for row in same_follows] == [twin.pk]


def test_cache_lookup__one_query_on_postgresql_with_the_revision(backend):
    with registry():
        first = services.submit("a good day", "sentiment")
        services.process([first.pk])
    hashes = {text_hash("a good day")}

    with CaptureQueriesContext(connection) as queries:
        found = ClassificationRequest.objects.newest_answers(
            backend="default",
            model_id=SST2,
            revision="714eb0f",
            parameters=Parameters(None, 2),
            hashes=hashes,
            since=None,
        )
        missed = ClassificationRequest.objects.newest_answers(
            backend="default",
            model_id=SST2,
            revision="other",
            parameters=Parameters(None, 2),
            hashes=hashes,
            since=None,
        )

    assert [row.pk for row in found] == [first.pk] and missed == []
    if connection.vendor == "postgresql":
        assert len(queries) == 2


# --- rerun: the copies textclass_reclassify makes -----------------------------------------


def test_rerun__copies_text_owner_and_source_with_the_key_s_current_target(
    alice, sent, django_capture_on_commit_callbacks
):
    from tests.testapp.models import Note

    note = Note.objects.create(text="a good day")
    with registry():
        old = services.submit(
            "a good day", "sentiment", owner=alice, source=note, source_field="text"
        )
    with registry(model=NEWER, revision="v2", parameters={"function_to_apply": "sigmoid"}):
        from django_textclass import catalog

        with django_capture_on_commit_callbacks(execute=True):
            created = services.rerun(
                ClassificationRequest.objects.filter(pk=old.pk), catalog.entry("sentiment")
            )
    dispatch.flush()

    assert created == 1
    new = ClassificationRequest.objects.exclude(pk=old.pk).get()
    assert (new.model_key, new.model_id, new.revision, new.backend) == (
        "sentiment",
        NEWER,
        "v2",
        "default",
    )
    assert (new.function_to_apply, new.top_k, new.use_cache) == ("sigmoid", None, True)
    assert (new.owner, new.source, new.source_field, new.text) == (
        alice,
        note,
        "text",
        "a good day",
    )
    assert new.status == Status.PENDING
    old = fresh(old)
    assert (old.model_id, old.revision) == (SST2, "714eb0f")  # history kept
    assert sent.ids == [new.pk]


def test_rerun__a_split_text_is_copied_with_its_chunks(sent, django_capture_on_commit_callbacks):
    with registry():
        parent = services.submit(
            "word " * 30, "sentiment", long_text={"POLICY": "split", "MAX_LENGTH": 40}
        )
    old_chunks = list(
        ClassificationRequest.objects.filter(parent=parent)
        .order_by("chunk_index")
        .values_list("text", flat=True)
    )
    with registry(revision="v2"):
        from django_textclass import catalog

        with django_capture_on_commit_callbacks(execute=True):
            services.rerun(
                ClassificationRequest.objects.filter(pk=parent.pk), catalog.entry("sentiment")
            )
    dispatch.flush()

    copy = ClassificationRequest.objects.filter(parent__isnull=True).exclude(pk=parent.pk).get()
    chunks = ClassificationRequest.objects.filter(parent=copy).order_by("chunk_index")
    assert list(chunks.values_list("text", flat=True)) == old_chunks
    assert set(chunks.values_list("revision", flat=True)) == {"v2"}
    assert copy.status == Status.RUNNING  # waiting for its chunks
    assert sorted(sent.ids) == sorted(chunks.values_list("pk", flat=True))  # not the parent


# --- a key whose MODEL is a dedicated endpoint's URL (real HTTP, the loopback emulator) ---


def real_backend(emulator):
    return {
        "default": {
            "BACKEND": "django_textclass.backends.huggingface.Backend",
            "OPTIONS": {"API_URL": emulator.url + "/models/{model_id}", "TOKEN": "hf_registry"},
        }
    }


def test_process__an_endpoint_url_key__posted_to_that_url_with_the_backend_s_token(emulator):
    emulator.shape = "toolkit"  # a dedicated endpoint's transformers pipeline
    url = emulator.url + "/models/acme/dedicated"
    with textclass_settings(BACKENDS=real_backend(emulator), MODELS={"toxicity": {"MODEL": url}}):
        row = services.submit("a good day", "toxicity")
        services.process([row.pk])

    (sent_request,) = emulator.requests
    assert sent_request.path == "/models/acme/dedicated"
    assert sent_request.headers["authorization"] == "Bearer hf_registry"
    # A dedicated endpoint answers the best label alone unless asked for every one.
    assert sent_request.body == {"inputs": "a good day", "parameters": {"top_k": None}}
    row = fresh(row)
    assert (row.status, row.model_id, row.model_key) == (Status.SUCCEEDED, url, "toxicity")
    assert [item["label"] for item in row.labels] == ["POSITIVE", "NEGATIVE"]  # every label


def test_process__an_endpoint_url_key_s_503_is_a_waking_endpoint_no_attempt_spent(emulator):
    from django_textclass.testing.emulator import Reply

    url = emulator.url + "/models/acme/dedicated"
    emulator.script(Reply.unavailable())
    with textclass_settings(BACKENDS=real_backend(emulator), MODELS={"toxicity": {"MODEL": url}}):
        row = services.submit("a good day", "toxicity")
        services.process([row.pk])

    row = fresh(row)
    assert (row.status, row.error_code, row.attempts) == (Status.PENDING, "endpoint_waking", 0)


def test_process__the_router_template_s_503_stays_what_it_was(emulator):
    from django_textclass.testing.emulator import Reply

    emulator.script(Reply.unavailable())
    with textclass_settings(BACKENDS=real_backend(emulator), MODELS={"sentiment": {"MODEL": SST2}}):
        row = services.submit("a good day", "sentiment")
        services.process([row.pk])

    assert fresh(row).error_code == "http_503"
    assert emulator.requests[0].body == {"inputs": "a good day"}  # no top_k: null there


def test_process__a_stored_endpoint_url_no_key_names__failed_and_never_sent(emulator):
    url = emulator.url + "/models/acme/dedicated"
    row = ClassificationRequest.objects.create(
        model_id=url, text="a good day", text_hash=text_hash("a good day"), backend="default"
    )

    with textclass_settings(BACKENDS=real_backend(emulator), MODELS={}):
        services.process([row.pk])

    assert fresh(row).error_code == "invalid_model_id"
    assert emulator.requests == []


def test_reclassify_action__the_copy_keeps_the_key_and_revision_it_was_made_with():
    with registry():
        old = services.submit("a good day", "sentiment")
    with registry(model=NEWER, revision="v2"):  # the admin's action re-runs the row as it was
        services.reclassify(ClassificationRequest.objects.filter(pk=old.pk))

    copy = ClassificationRequest.objects.exclude(pk=old.pk).get()
    assert (copy.model_key, copy.model_id, copy.revision, copy.use_cache) == (
        "sentiment",
        SST2,
        "714eb0f",
        False,
    )
