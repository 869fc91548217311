"""The local model backend, with a tiny model the tests build: loading, batching, parameters,
truncation, offline loading, the per-process model and the system check."""

import math
import multiprocessing
import os
import socket
import sys
import threading

import pytest
from django.core import checks as django_checks
from django.test import override_settings

from django_textclass.backends import local
from django_textclass.checks import check_settings
from django_textclass.exceptions import TextClassConfigurationError
from django_textclass.types import Parameters
from tests.backends.local_model import (
    LABELS,
    MAX_POSITIONS,
    TEXTS,
    WORDS,
    build_model,
    expected_scores,
    make_backend,
    torch,
)

pytestmark = pytest.mark.local_model

MODEL_ID = "acme/tiny-sentiment"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("local") / "tiny")


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    # The backend sets the process's thread count; the rest of the suite keeps its own.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def connections(monkeypatch):
    """Every outbound connection or DNS lookup this process tries (each is refused)."""
    tried = []

    def refuse(*args, **kwargs):
        tried.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise OSError("the network is off in this test")

    for target, name in [
        (socket.socket, "connect"),
        (socket.socket, "connect_ex"),
        (socket, "create_connection"),
        (socket, "getaddrinfo"),
    ]:
        monkeypatch.setattr(target, name, refuse)
    return tried


def classify(backend, texts, **parameters):
    return backend.classify(list(texts), Parameters(**parameters), model_id=MODEL_ID)


def scores(ranking):
    return {item.label: item.score for item in ranking.scores}


def assert_close(ranking, expected, tolerance=1e-5):
    assert set(scores(ranking)) == set(expected)
    for label, score in scores(ranking).items():
        assert math.isclose(score, expected[label], abs_tol=tolerance), (label, score, expected)


def words(count):
    return " ".join(WORDS[i % len(WORDS)] for i in range(count))


# --- rankings --------------------------------------------------------------------------


def test_classify__one_ranking_per_text_in_order_with_every_label(folder):
    backend = make_backend(folder)

    rankings = classify(backend, TEXTS)

    assert len(rankings) == len(TEXTS)
    for text, ranking in zip(TEXTS, rankings, strict=True):
        assert [item.label for item in ranking.scores] == sorted(
            LABELS, key=lambda label: -scores(ranking)[label]
        )
        assert_close(ranking, expected_scores(folder, text))
        assert math.isclose(sum(scores(ranking).values()), 1.0, abs_tol=1e-6)
    # The texts are told apart: a ranking given to the wrong text would not pass above.
    assert len({tuple(round(s, 4) for s in scores(r).values()) for r in rankings}) == len(TEXTS)


@pytest.mark.parametrize("batch_size", [1, 2, 4, 16])
def test_batch_size__one_forward_pass_per_call_and_the_same_answers(folder, batch_size):
    backend = make_backend(folder, BATCH_SIZE=batch_size)
    shapes = []
    model = backend.model_for(MODEL_ID).pipeline.model
    hook = model.register_forward_hook(
        lambda module, args, kwargs, output: shapes.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True,
    )
    try:
        # As the pipeline calls it: chunks of at most batch_size texts.
        rankings = [
            ranking
            for start in range(0, len(TEXTS), batch_size)
            for ranking in classify(backend, TEXTS[start : start + batch_size])
        ]
    finally:
        hook.remove()

    assert backend.supports_batch and backend.batch_size == batch_size
    assert [rows for rows, _ in shapes] == [
        len(TEXTS[start : start + batch_size]) for start in range(0, len(TEXTS), batch_size)
    ]
    for text, ranking in zip(TEXTS, rankings, strict=True):
        assert_close(ranking, expected_scores(folder, text))


@pytest.mark.parametrize("function", ["softmax", "sigmoid", "none"])
def test_function_to_apply__applied_to_the_logits(folder, function):
    backend = make_backend(folder)

    rankings = classify(backend, TEXTS[:3], function_to_apply=function)

    for text, ranking in zip(TEXTS[:3], rankings, strict=True):
        assert_close(ranking, expected_scores(folder, text, function))
    if function == "none":
        assert any(score < 0 or score > 1 for r in rankings for score in scores(r).values())


def test_function_to_apply__default_is_sigmoid_for_a_multi_label_model(tmp_path):
    # As the Inference API answers: the model's own kind decides when nothing is asked.
    folder = build_model(tmp_path / "multi", problem_type="multi_label_classification")
    backend = make_backend(folder)

    (ranking,) = classify(backend, TEXTS[:1])

    assert_close(ranking, expected_scores(folder, TEXTS[0], "sigmoid"))
    assert sum(scores(ranking).values()) != pytest.approx(1.0)


@pytest.mark.parametrize("top_k", [1, 2, 3, 50])
def test_top_k__keeps_the_best_k(folder, top_k):
    backend = make_backend(folder)

    rankings = classify(backend, TEXTS, top_k=top_k)
    every = classify(backend, TEXTS)

    for ranking, full in zip(rankings, every, strict=True):
        assert ranking.scores == full.scores[:top_k]
        assert len(ranking.scores) == min(top_k, len(LABELS))


def test_long_text__truncated_to_the_models_max_length(folder):
    backend = make_backend(folder)
    long_text = words(20 * MAX_POSITIONS)

    (ranking,) = classify(backend, [long_text])

    # [CLS] and [SEP] take two of the model's positions; each word is one token.
    kept = words(MAX_POSITIONS - 2)
    assert_close(ranking, expected_scores(folder, kept))
    assert scores(ranking) != pytest.approx(expected_scores(folder, words(MAX_POSITIONS - 3)))


def test_long_text__max_length_option_truncates_shorter(folder):
    backend = make_backend(folder, MAX_LENGTH=10)

    (ranking,) = classify(backend, [words(40)])

    assert_close(ranking, expected_scores(folder, words(8)))


def test_same_seed__same_answers_and_another_seed_other_answers(tmp_path):
    first = make_backend(build_model(tmp_path / "a", seed=7))
    again = make_backend(build_model(tmp_path / "b", seed=7))
    other = make_backend(build_model(tmp_path / "c", seed=8))

    assert classify(first, TEXTS) == classify(again, TEXTS)
    assert classify(first, TEXTS) != classify(other, TEXTS)


# --- where the model comes from ----------------------------------------------------------


def test_model_paths__each_model_id_its_own_folder(tmp_path, connections):
    sentiment = build_model(tmp_path / "sentiment", seed=1)
    topics = build_model(tmp_path / "topics", seed=2, labels=("SPORT", "POLITICS"))
    backend = local.Backend(
        alias="local",
        THREADS=1,
        CACHE_DIR=str(tmp_path / "empty-cache"),
        MODEL_PATHS={"acme/sentiment": str(sentiment), "acme/topics": str(topics)},
    )

    (first,) = backend.classify([TEXTS[0]], Parameters(), model_id="acme/sentiment")
    (second,) = backend.classify([TEXTS[0]], Parameters(), model_id="acme/topics")
    with pytest.raises(TextClassConfigurationError, match="'acme/other' is not in MODEL_PATHS"):
        backend.classify([TEXTS[0]], Parameters(), model_id="acme/other")

    assert set(scores(first)) == set(LABELS)
    assert set(scores(second)) == {"SPORT", "POLITICS"}
    assert connections == []


def hub_cache(cache, model_id, folder, revision="0123456789abcdef0123456789abcdef01234567"):
    """Lay ``folder``'s files out as the Hub's cache holds a downloaded model."""
    repo = cache / ("models--" + model_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def test_cache__a_model_id_read_from_the_local_cache_without_network(folder, tmp_path, connections):
    cache = tmp_path / "hub"
    hub_cache(cache, MODEL_ID, folder)
    backend = local.Backend(alias="local", THREADS=1, CACHE_DIR=str(cache))

    rankings = classify(backend, TEXTS[:2])

    for text, ranking in zip(TEXTS[:2], rankings, strict=True):
        assert_close(ranking, expected_scores(folder, text))
    assert connections == []


OLD_COMMIT, NEW_COMMIT = "1" * 40, "2" * 40


@pytest.fixture
def two_revisions(tmp_path):
    """The cache holds two snapshots of MODEL_ID: main (seed 1) and the tag v2 (seed 2)."""
    cache = tmp_path / "hub"
    old = build_model(tmp_path / "old", seed=1)
    new = build_model(tmp_path / "new", seed=2)
    hub_cache(cache, MODEL_ID, old, revision=OLD_COMMIT)
    repo = cache / ("models--" + MODEL_ID.replace("/", "--"))
    (repo / "snapshots" / NEW_COMMIT).mkdir()
    for path in new.iterdir():
        (repo / "snapshots" / NEW_COMMIT / path.name).write_bytes(path.read_bytes())
    (repo / "refs" / "v2").write_text(NEW_COMMIT)
    return cache, old, new


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        (None, "old"),
        ("main", "old"),
        ("v2", "new"),
        (NEW_COMMIT, "new"),
        (OLD_COMMIT, "old"),
    ],
)
def test_revision__a_key_s_revision_picks_that_snapshot_of_the_cache(
    two_revisions, connections, revision, expected
):
    cache, old, new = two_revisions
    backend = local.Backend(alias="local", THREADS=1, CACHE_DIR=str(cache))

    (ranking,) = backend.classify([TEXTS[0]], Parameters(), model_id=MODEL_ID, revision=revision)

    assert_close(ranking, expected_scores({"old": old, "new": new}[expected], TEXTS[0]))
    assert connections == []


@pytest.mark.parametrize("revision", ["v3", "../../..", "a b"])
def test_revision__not_in_the_cache_or_not_a_name__configuration_error(
    two_revisions, connections, revision
):
    cache, *_ = two_revisions
    backend = local.Backend(alias="local", THREADS=1, CACHE_DIR=str(cache))

    with pytest.raises(TextClassConfigurationError) as caught:
        backend.classify([TEXTS[0]], Parameters(), model_id=MODEL_ID, revision=revision)

    if revision == "v3":
        assert "at revision 'v3' is not in MODEL_PATHS" in str(caught.value)
    assert backend._models == {} and connections == []


def test_revision__a_configured_folder_is_one_revision_the_name_is_a_label(folder):
    backend = local.Backend(alias="local", THREADS=1, MODEL_PATHS={MODEL_ID: str(folder)})

    assert backend.folder_for(MODEL_ID, "v2") == backend.folder_for(MODEL_ID) == folder


@pytest.mark.django_db
def test_revision__a_key_s_revision_reaches_the_model_through_the_pipeline(
    two_revisions, connections
):
    from django_textclass import services

    cache, _, new = two_revisions
    backends = {
        "default": {
            "BACKEND": "django_textclass.backends.local.Backend",
            "OPTIONS": {"THREADS": 1, "CACHE_DIR": str(cache)},
        }
    }
    models = {"sentiment": {"MODEL": MODEL_ID, "REVISION": "v2"}}
    with override_settings(TEXTCLASS={"BACKENDS": backends, "MODELS": models}):
        request = services.submit(TEXTS[0], "sentiment")
        services.process([request.pk])

    request.refresh_from_db()
    assert (request.status, request.revision) == ("succeeded", "v2")
    expected = expected_scores(new, TEXTS[0])
    stored = {item["label"]: item["score"] for item in request.labels}
    assert stored == pytest.approx(expected, abs=1e-5)


def test_cache__a_model_not_there_is_a_configuration_error_and_no_download(tmp_path, connections):
    backend = local.Backend(alias="local", CACHE_DIR=str(tmp_path / "hub"))

    with pytest.raises(TextClassConfigurationError) as caught:
        classify(backend, ["a good day"])

    message = str(caught.value)
    assert MODEL_ID in message and str(tmp_path / "hub") in message
    assert "nothing is downloaded" in message
    assert connections == []


@pytest.mark.parametrize("model_id", ["tiny", "../tiny", "./tiny", "/etc"])
def test_cache__a_model_id_that_is_a_path_never_picks_a_folder(model_id, tmp_path, monkeypatch):
    # "tiny" is a model folder in the working directory, and a valid repository id:
    # transformers alone would load it as a path.
    build_model(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    backend = local.Backend(alias="local", CACHE_DIR=str(tmp_path / "hub"))

    with pytest.raises(TextClassConfigurationError):
        backend.classify(["a good day"], Parameters(), model_id=model_id)

    assert backend._models == {}


def test_missing_folder__configuration_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-model"
    backend = make_backend(missing)

    with pytest.raises(TextClassConfigurationError, match=f"{missing} is not a folder"):
        classify(backend, ["a good day"])


def test_folder_without_a_model__configuration_error_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    backend = make_backend(tmp_path / "empty")

    with pytest.raises(TextClassConfigurationError, match="empty has no config.json"):
        classify(backend, ["a good day"])


def test_folder_with_a_config_but_no_weights__configuration_error_naming_it(folder, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((folder / "config.json").read_bytes())
    backend = make_backend(broken)

    with pytest.raises(TextClassConfigurationError, match=f"cannot load .* from {broken}"):
        classify(backend, ["a good day"])


def test_offline__a_model_folder_loads_and_classifies_with_the_network_off(folder, connections):
    backend = make_backend(folder)

    classify(backend, TEXTS)

    assert connections == []


def test_extra_missing__configuration_error_with_the_pip_command(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # what a missing package does
    backend = make_backend(folder)

    with pytest.raises(
        TextClassConfigurationError, match=r"pip install 'django-textclass\[local\]'"
    ):
        classify(backend, ["a good day"])


# --- one model per process ---------------------------------------------------------------


def test_model__loaded_once_and_shared_by_threads(folder, caplog):
    backend = make_backend(folder)
    results = {}

    def work(index):
        results[index] = classify(backend, TEXTS[index % len(TEXTS) :][:2])

    with caplog.at_level("INFO", logger="django_textclass.backends.local"):
        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert len(results) == 6
    loads = [r for r in caplog.records if "loaded the model" in r.getMessage()]
    assert len(loads) == 1
    assert f"process {os.getpid()}" in loads[0].getMessage()
    assert len(backend._models) == 1


def test_close__unloads_and_the_next_call_loads_again(folder):
    backend = make_backend(folder)
    first = classify(backend, TEXTS[:1])
    pipeline = backend.model_for(MODEL_ID).pipeline

    backend.close()

    assert backend._models == {}
    assert classify(backend, TEXTS[:1]) == first
    assert backend.model_for(MODEL_ID).pipeline is not pipeline


def _classify_in_child(backend, queue):
    # Runs in the forked child: what it inherited, then its own answer.
    inherited = len(backend._models)
    (ranking,) = classify(backend, TEXTS[:1])
    queue.put((os.getpid(), inherited, len(backend._models), scores(ranking)))


def test_fork__a_child_loads_its_own_model(folder):
    backend = make_backend(folder)
    (parent_ranking,) = classify(backend, TEXTS[:1])
    assert len(backend._models) == 1
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    child = context.Process(target=_classify_in_child, args=(backend, queue))
    child.start()
    pid, inherited, loaded, child_scores = queue.get(timeout=120)
    child.join(30)

    assert child.exitcode == 0
    assert pid != os.getpid()
    assert inherited == 0 and loaded == 1
    assert child_scores == pytest.approx(scores(parent_ranking))
    assert len(backend._models) == 1  # the parent keeps its own


# --- options, threads, device ------------------------------------------------------------


def test_threads__default_from_the_cpus_and_the_processes(folder):
    cpus = local.cpu_count()

    assert make_backend(folder, THREADS=None).threads == 1
    assert make_backend(folder, THREADS=None, PROCESSES=1).threads == cpus
    assert make_backend(folder, THREADS=None, PROCESSES=2 * cpus).threads == 1
    assert make_backend(folder, THREADS=3).threads == 3


def test_threads__set_in_the_process_when_the_model_loads(folder):
    torch.set_num_threads(2)
    backend = make_backend(folder, THREADS=1)

    classify(backend, TEXTS[:1])

    assert torch.get_num_threads() == 1


def test_calls_in_flight__one():
    assert local.Backend.calls_in_flight == 1


@pytest.mark.parametrize(
    "options",
    [
        {"BATCH_SIZE": 0},
        {"BATCH_SIZE": "many"},
        {"THREADS": 0},
        {"PROCESSES": -1},
        {"MAX_LENGTH": 0},
        {"DEVICE": "gpu"},
        {"DEVICE": "cuda:x"},
        {"DEVICE": None},
        {"MODEL_PATH": 3},
        {"MODEL_PATH": ""},
        {"MODEL_PATHS": ["acme/a"]},
        {"MODEL_PATHS": {"../a": "/tmp/a"}},
        {"NO_SUCH_OPTION": 1},
    ],
    ids=str,
)
def test_options__wrong_values_refused(options):
    with pytest.raises(TextClassConfigurationError):
        local.Backend(alias="local", **options)


def test_device__auto_is_the_cpu_without_cuda(folder):
    backend = make_backend(folder, DEVICE="auto")

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert backend.model_for(MODEL_ID).pipeline.device.type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device__cuda_without_cuda_is_a_configuration_error(folder):
    backend = make_backend(folder, DEVICE="cuda")

    with pytest.raises(TextClassConfigurationError, match="sees 0 CUDA device"):
        classify(backend, ["a good day"])
    assert [m.id for m in backend.check()] == ["textclass.E052"]


# --- the system check --------------------------------------------------------------------


def run_checks(backends):
    with override_settings(TEXTCLASS={"BACKENDS": backends}):
        return [m for m in check_settings() if m.id.startswith("textclass.E05")]


def config(**options):
    return {
        "default": {
            "BACKEND": "django_textclass.backends.local.Backend",
            "OPTIONS": {"THREADS": 1, **options},
        }
    }


def test_check__a_model_folder_passes(folder):
    assert run_checks(config(MODEL_PATH=str(folder))) == []


def test_check__a_missing_folder_named(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    messages = run_checks(
        config(
            MODEL_PATHS={
                "acme/a": str(tmp_path / "nope"),
                "acme/b": str(tmp_path / "empty"),
                "acme/c": str(folder),
            }
        )
    )

    assert [m.id for m in messages] == ["textclass.E051", "textclass.E051"]
    assert all(m.level == django_checks.ERROR for m in messages)
    assert f"{tmp_path / 'nope'} is not a folder" in messages[0].msg
    assert "'acme/a'" in messages[0].msg
    assert f"{tmp_path / 'empty'} has no config.json" in messages[1].msg


@pytest.mark.parametrize("package", ["torch", "transformers"])
def test_check__extra_not_installed_says_how_to_install_it(folder, monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)

    (message,) = run_checks(config(MODEL_PATH=str(folder)))

    assert message.id == "textclass.E050"
    assert package in message.msg
    assert message.hint == "Install the extra: pip install 'django-textclass[local]'"


def test_check__loads_no_model(folder, caplog):
    with caplog.at_level("INFO", logger="django_textclass.backends.local"):
        run_checks(config(MODEL_PATH=str(folder)))

    assert not [r for r in caplog.records if "loaded the model" in r.getMessage()]


@pytest.mark.django_db
def test_textclass_check__a_local_key_answers_in_process_with_its_revision_sent(
    two_revisions, connections
):
    from io import StringIO

    from django.core.management import call_command

    cache, *_ = two_revisions
    backends = {
        "default": {
            "BACKEND": "django_textclass.backends.local.Backend",
            "OPTIONS": {"THREADS": 1, "CACHE_DIR": str(cache)},
        }
    }
    models = {"sentiment": {"MODEL": MODEL_ID, "REVISION": "v2"}}
    out = StringIO()
    with override_settings(TEXTCLASS={"BACKENDS": backends, "MODELS": models}):
        call_command("textclass_check", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == f"sentiment: backend 'default', {MODEL_ID}, revision v2 (sent)"
    assert lines[1].startswith("  OK: answered in ")
    assert lines[2] == "  answer: built in process"
    assert connections == []
