"""The loopback Inference API emulator, exercised over real HTTP (no Django needed)."""

from __future__ import annotations

import json
import math
import re
import threading
import time

import pytest
import requests

from django_textclass.testing import InferenceAPIEmulator, ReceivedRequest, Reply
from django_textclass.testing.scoring import rank
from tests.testing.helpers import EmulatorCLI

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"


@pytest.fixture
def emu():
    with InferenceAPIEmulator() as emulator:
        yield emulator


def post(emu, inputs, model=MODEL, parameters=None, **kwargs):
    body = {"inputs": inputs}
    if parameters is not None:
        body["parameters"] = parameters
    kwargs.setdefault("timeout", 10)
    return requests.post(emu.model_url(model), json=body, **kwargs)


def labels_of(ranking):
    return [entry["label"] for entry in ranking]


# Shapes and the labelling rule.


def test_shape_nested__single_string_answers_list_of_one_ranking(emu):
    response = post(emu, "I love this movie")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    data = response.json()
    assert len(data) == 1
    assert labels_of(data[0]) == ["POSITIVE", "NEGATIVE"]
    assert data[0][0]["score"] > 0.9


def test_shape_flat__single_string_answers_one_flat_ranking():
    with InferenceAPIEmulator(shape="flat") as emu:
        data = post(emu, "I hate this movie").json()

    assert isinstance(data[0], dict)
    assert labels_of(data) == ["NEGATIVE", "POSITIVE"]


def test_shape_flat__list_still_answers_one_ranking_per_input():
    with InferenceAPIEmulator(shape="flat") as emu:
        data = post(emu, ["good", "bad"]).json()

    assert [ranking[0]["label"] for ranking in data] == ["POSITIVE", "NEGATIVE"]


def test_shape__can_change_while_running(emu):
    assert isinstance(post(emu, "good").json()[0], list)

    emu.shape = "flat"

    assert isinstance(post(emu, "good").json()[0], dict)
    with pytest.raises(ValueError):
        emu.shape = "sideways"


def test_batch__answers_one_ranking_per_input_in_input_order(emu):
    texts = ["I love it", "I hate it", "it is a chair", "I love it"]

    data = post(emu, texts).json()

    assert len(data) == 4
    assert [ranking[0]["label"] for ranking in data] == [
        "POSITIVE",
        "NEGATIVE",
        "POSITIVE",
        "POSITIVE",
    ]
    assert data[0] == data[3]
    assert data[0] == post(emu, "I love it").json()[0]


@pytest.mark.parametrize(
    ("text", "top"),
    [
        ("This is not good", "NEGATIVE"),
        ("This is not bad at all", "POSITIVE"),
        ("I don't like it", "NEGATIVE"),
        ("never boring, always excellent", "POSITIVE"),
        ("Meh. Terrible and boring, though the music was great", "NEGATIVE"),
    ],
)
def test_rule__negators_flip_the_next_word(emu, text, top):
    assert post(emu, text).json()[0][0]["label"] == top


def test_rule__text_without_sentiment_words_leans_slightly_positive(emu):
    ranking = post(emu, "The train leaves at nine", parameters={"function_to_apply": "none"})

    assert ranking.json()[0] == [
        {"label": "POSITIVE", "score": pytest.approx(0.1)},
        {"label": "NEGATIVE", "score": pytest.approx(-0.1)},
    ]


def test_labels__configured_model_uses_its_labels_and_others_keep_sentiment():
    model = "cardiffnlp/twitter-roberta-base-sentiment-latest"
    with InferenceAPIEmulator(labels={model: ["negative", "neutral", "positive"]}) as emu:
        custom = post(emu, "hello", model=model).json()
        default = post(emu, "hello", model="ProsusAI/finbert").json()

    assert sorted(labels_of(custom[0])) == ["negative", "neutral", "positive"]
    assert sum(entry["score"] for entry in custom[0]) == pytest.approx(1.0)
    assert sorted(labels_of(default[0])) == ["NEGATIVE", "POSITIVE"]


def test_determinism__same_text_gets_same_answer_across_emulators():
    labels = {"m": ["a", "b", "c", "d"]}
    with InferenceAPIEmulator(labels=labels) as first:
        one = post(first, ["same text", "other text"], model="m").json()
    with InferenceAPIEmulator(labels=labels) as second:
        two = post(second, ["same text", "other text"], model="m").json()

    assert one == two
    assert one[0] != one[1]


def test_ranking__sorted_by_score_highest_first():
    ranking = rank(["b", "a", "c", "d", "e"], "anything", function_to_apply="none")
    scores = [entry["score"] for entry in ranking]

    assert scores == sorted(scores, reverse=True)
    assert sorted(labels_of(ranking)) == ["a", "b", "c", "d", "e"]
    assert all(-4.0 <= score <= 4.0 for score in scores)


# Parameters.


def test_function_to_apply__softmax_is_default_and_sums_to_one(emu):
    default = post(emu, "great").json()[0]
    softmax = post(emu, "great", parameters={"function_to_apply": "softmax"}).json()[0]

    assert default == softmax
    assert sum(entry["score"] for entry in softmax) == pytest.approx(1.0)
    assert all(type(entry["score"]) is float for entry in softmax)


def test_function_to_apply__sigmoid_scores_each_logit_in_open_unit_interval(emu):
    ranking = post(emu, "great", parameters={"function_to_apply": "sigmoid"}).json()[0]

    assert all(0.0 < entry["score"] < 1.0 for entry in ranking)
    assert ranking[0]["score"] == pytest.approx(1 / (1 + math.exp(-1.6)))
    assert sum(entry["score"] for entry in ranking) != pytest.approx(0.5)


def test_function_to_apply__none_returns_raw_logits(emu):
    ranking = post(emu, "great excellent", parameters={"function_to_apply": "none"}).json()[0]

    assert ranking == [
        {"label": "POSITIVE", "score": pytest.approx(3.1)},
        {"label": "NEGATIVE", "score": pytest.approx(-3.1)},
    ]


def test_function_to_apply__single_label_model_defaults_to_sigmoid():
    with InferenceAPIEmulator(labels={"guard": ["INJECTION"]}) as emu:
        ranking = post(emu, "ignore previous instructions", model="guard").json()[0]

    assert labels_of(ranking) == ["INJECTION"]
    assert 0.0 < ranking[0]["score"] < 1.0
    logit = rank(["INJECTION"], "ignore previous instructions", "none")[0]["score"]
    assert ranking[0]["score"] == pytest.approx(1 / (1 + math.exp(-logit)))


def test_top_k__truncates_the_ranking(emu):
    emu.labels["m"] = ["a", "b", "c", "d"]

    full = post(emu, "text", model="m").json()[0]
    top2 = post(emu, "text", model="m", parameters={"top_k": 2}).json()[0]
    big = post(emu, "text", model="m", parameters={"top_k": 10}).json()[0]

    assert top2 == full[:2]
    assert big == full


@pytest.mark.parametrize(
    "parameters",
    [
        {"function_to_apply": "relu"},
        {"top_k": 0},
        {"top_k": "2"},
        {"top_k": True},
        {"top_k": None},
        {"truncation": True},
    ],
)
def test_parameters__invalid_values_answer_400_with_legacy_error_list(emu, parameters):
    response = post(emu, "text", parameters=parameters)

    assert response.status_code == 400
    errors = response.json()["error"]
    assert isinstance(errors, list)
    assert len(errors) == 1
    assert "in `parameters`" in errors[0]


def test_parameters__not_an_object_answers_400_with_error_list(emu):
    response = post(emu, "text", parameters=["top_k", 2])

    assert response.status_code == 400
    assert isinstance(response.json()["error"], list)


def test_options__legacy_key_is_accepted_and_ignored(emu):
    body = {"inputs": "good", "options": {"wait_for_model": True, "use_cache": False}}

    response = requests.post(emu.model_url(MODEL), json=body, timeout=10)

    assert response.status_code == 200
    assert response.json()[0][0]["label"] == "POSITIVE"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"inputs": "unterminated',
        b'["a list"]',
        b'{"text": "no inputs key"}',
        b'{"inputs": ""}',
        b'{"inputs": []}',
        b'{"inputs": ["ok", 3]}',
        b'{"inputs": ["ok", ""]}',
        b'{"inputs": {"text": "x"}}',
        b"",
    ],
)
def test_body__invalid_answers_400_with_error_string(emu, raw):
    response = requests.post(
        emu.model_url(MODEL), data=raw, headers={"Content-Type": "application/json"}, timeout=10
    )

    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)


# Routing, auth and limits.


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/models/",
        "/models/a/b/c",
        "/hf-inference/models/m",
        "/models/m/pipeline/x",
        "/models/bad%20id",
    ],
)
def test_route__other_paths_answer_404_plain_text(emu, path):
    response = requests.post(emu.url + path, json={"inputs": "x"}, timeout=10)

    assert response.status_code == 404
    assert response.text == "Not Found"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_route__get_on_model_answers_405(emu):
    response = requests.get(emu.model_url(MODEL), timeout=10)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_route__name_without_org_and_query_string_are_accepted(emu):
    response = requests.post(
        emu.url + "/models/finbert-v1.2_x?wait=1", json={"inputs": "x"}, timeout=10
    )

    assert response.status_code == 200
    assert emu.requests[-1].model_id == "finbert-v1.2_x"


def test_token__missing_or_wrong_answers_401_and_right_one_passes():
    with InferenceAPIEmulator(token="hf_secret") as emu:
        missing = post(emu, "x")
        wrong = post(emu, "x", headers={"Authorization": "Bearer hf_other"})
        right = post(emu, "x", headers={"Authorization": "Bearer hf_secret"})

    assert missing.status_code == 401
    assert missing.json() == {"error": "Invalid credentials in Authorization header"}
    assert wrong.status_code == 401
    assert right.status_code == 200


def test_token__failed_check_does_not_consume_the_script():
    with InferenceAPIEmulator(token="t") as emu:
        emu.script(Reply.unavailable())
        assert post(emu, "x").status_code == 401
        assert emu.pending_replies == 1
        assert post(emu, "x", headers={"Authorization": "Bearer t"}).status_code == 503
        assert emu.pending_replies == 0


def test_max_batch__longer_list_answers_422_validation(emu):
    emu.max_batch = 4

    too_long = post(emu, [f"text {i}" for i in range(9)])
    at_limit = post(emu, [f"text {i}" for i in range(4)])
    single = post(emu, "one")

    assert too_long.status_code == 422
    assert too_long.json() == {
        "error": "batch size 9 exceeds the maximum of 4",
        "error_type": "Validation",
    }
    assert at_limit.status_code == 200
    assert len(at_limit.json()) == 4
    assert single.status_code == 200


def test_latency__delays_classification_but_not_control_routes(emu):
    emu.latency = 0.3

    started = time.monotonic()
    response = post(emu, "x")
    classify_took = time.monotonic() - started
    started = time.monotonic()
    requests.get(emu.url + "/_emulator/requests", timeout=10)
    control_took = time.monotonic() - started

    assert classify_took >= 0.3
    assert int(response.headers["x-compute-time"]) >= 300
    assert control_took < 0.3


def test_concurrency__requests_are_served_in_parallel(emu):
    emu.latency = 0.3
    statuses = []

    def worker():
        statuses.append(post(emu, "x").status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 8
    assert time.monotonic() - started < 8 * 0.3 / 2


def test_keep_alive__one_session_stays_in_sync_across_answers(emu):
    emu.script(Reply.normal(), Reply.plain(404, "Not Found"), Reply.server_error(502))
    with requests.Session() as session:
        answers = [
            session.post(emu.model_url(MODEL), json={"inputs": text}, timeout=10)
            for text in ["good", "x", "x", "bad", "I love it"]
        ]

    assert [answer.status_code for answer in answers] == [200, 404, 502, 200, 200]
    assert answers[3].json()[0][0]["label"] == "NEGATIVE"
    assert answers[4].json()[0][0]["label"] == "POSITIVE"
    assert all(req.headers["connection"] == "keep-alive" for req in emu.requests)


# Scripted replies.


def test_stop__a_kept_alive_client_is_refused_too_and_start_serves_the_same_port_again():
    from tests.helpers import free_port

    emulator = InferenceAPIEmulator(port=free_port()).start()
    try:
        url = emulator.model_url(MODEL)
        with requests.Session() as session:
            assert session.post(url, json={"inputs": "x"}, timeout=10).status_code == 200
            emulator.stop()  # the session still holds its kept-alive connection

            with pytest.raises(requests.ConnectionError):
                session.post(url, json={"inputs": "x"}, timeout=10)

            emulator.start()
            assert session.post(url, json={"inputs": "x"}, timeout=10).status_code == 200
        assert len(emulator.requests) == 2  # the log outlives a restart
    finally:
        emulator.stop()


def test_reply_loading__answers_503_with_estimated_time(emu):
    emu.script(Reply.loading(estimated_time=1.5))

    response = post(emu, "x")

    assert response.status_code == 503
    assert response.json() == {
        "error": f"Model {MODEL} is currently loading",
        "estimated_time": 1.5,
    }
    assert "x-compute-time" in response.headers


def test_reply_rate_limited__answers_429_with_retry_after(emu):
    emu.script(Reply.rate_limited(retry_after=3))

    response = post(emu, "x")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert "RateLimit" not in response.headers
    assert response.json() == {
        "error": "Rate limit reached. You reached free usage limit (reset hourly)."
    }


def test_reply_rate_limited__with_ratelimit_sends_ietf_header(emu):
    emu.script(Reply.rate_limited(retry_after=2.1, ratelimit=(0, 42)))

    response = post(emu, "x")

    assert response.headers["RateLimit"] == '"api";r=0;t=42'
    assert response.headers["Retry-After"] == "3"


def test_reply_server_error__500_answers_json_unknown_error(emu):
    emu.script(Reply.server_error())

    response = post(emu, "x")

    assert response.status_code == 500
    assert response.json() == {"error": "unknown error"}


@pytest.mark.parametrize(("status", "phrase"), [(502, "Bad Gateway"), (504, "Gateway Timeout")])
def test_reply_server_error__gateway_statuses_answer_html(emu, status, phrase):
    emu.script(Reply.server_error(status))

    response = post(emu, "x")

    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == f"<html><body><h1>{status} {phrase}</h1></body></html>"


def test_reply_unavailable__answers_503_without_estimated_time(emu):
    emu.script(Reply.unavailable())

    response = post(emu, "x")

    assert response.status_code == 503
    assert response.json() == {"error": "Service Temporarily Unavailable"}


def test_reply_malformed__answers_200_with_invalid_json(emu):
    emu.script(Reply.malformed())

    response = post(emu, "x")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(response.text)


def test_reply_wrong_shape__answers_200_with_json_that_is_not_a_ranking(emu):
    emu.script(Reply.wrong_shape())

    response = post(emu, "x")

    assert response.status_code == 200
    assert response.json() == {"label": "X"}


def test_reply_error__answers_status_with_error_message(emu):
    emu.script(Reply.error(402, "You have exceeded your monthly included credits"))

    response = post(emu, "x")

    assert response.status_code == 402
    assert response.json() == {"error": "You have exceeded your monthly included credits"}


def test_reply_plain__answers_plain_text(emu):
    emu.script(Reply.plain(410, "api-inference.huggingface.co is no longer supported."))

    response = post(emu, "x")

    assert response.status_code == 410
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "api-inference.huggingface.co is no longer supported."


def test_reply_hang__trips_client_timeout_then_server_keeps_answering(emu):
    emu.script(Reply.hang(3))

    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(emu, "x", timeout=0.3)

    assert time.monotonic() - started < 2
    assert post(emu, "good").json()[0][0]["label"] == "POSITIVE"


def test_reply_hang__answers_normally_after_the_delay(emu):
    emu.script(Reply.hang(0.3))

    started = time.monotonic()
    response = post(emu, "good")

    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert response.json()[0][0]["label"] == "POSITIVE"


def test_reply_generic__constructor_sends_status_json_headers_after_delay(emu):
    emu.script(
        Reply(
            status=424,
            json={"error": "Model is not a classifier model", "error_type": "Backend"},
            headers={"X-Error-Message": "backend"},
            delay=0.2,
        )
    )

    started = time.monotonic()
    response = post(emu, "x")

    assert time.monotonic() - started >= 0.2
    assert response.status_code == 424
    assert response.json()["error_type"] == "Backend"
    assert response.headers["X-Error-Message"] == "backend"


def test_reply_generic__own_headers_override_defaults_case_insensitively(emu):
    emu.script(
        Reply(
            status=200,
            body="{}",
            headers={"content-type": "application/problem+json", "X-Compute-Time": "7"},
        )
    )

    response = post(emu, "x")

    assert response.raw.headers.getlist("Content-Type") == ["application/problem+json"]
    assert response.raw.headers.getlist("x-compute-time") == ["7"]


def test_reply_generic__body_fills_in_model_id(emu):
    emu.script(Reply(status=404, body="no model {model_id}"))

    response = post(emu, "x", model="org/thing")

    assert response.text == "no model org/thing"


def test_reply_unauthorized__answers_401_without_the_credentials(emu):
    emu.script(Reply.unauthorized())

    response = post(emu, "x", headers={"Authorization": "Bearer hf_secret"})

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid credentials in Authorization header"}


def test_reply_unauthorized__echo_repeats_the_authorization_header(emu):
    emu.script(Reply.unauthorized(echo=True))

    response = post(emu, "x", headers={"Authorization": "Bearer hf_secret"})

    assert response.status_code == 401
    assert response.json() == {
        "error": "Invalid credentials in Authorization header: Bearer hf_secret"
    }


def test_reply_forbidden__echo_repeats_the_header_in_body_and_error_header(emu):
    emu.script(Reply.forbidden(), Reply.forbidden(echo=True))

    plain = post(emu, "x", headers={"Authorization": "Bearer hf_secret"})
    echoed = post(emu, "x", headers={"Authorization": "Bearer hf_secret"})

    assert plain.status_code == echoed.status_code == 403
    assert "hf_secret" not in plain.text and "X-Error-Message" not in plain.headers
    assert echoed.json()["error"].endswith("(credentials: Bearer hf_secret)")
    assert echoed.headers["X-Error-Message"] == echoed.json()["error"]


def test_reply_generic__authorization_placeholder_from_the_control_route(emu):
    requests.post(
        f"{emu.url}/_emulator/script",
        timeout=5,
        json=[
            {"status": 401, "body": "you sent <{authorization}>"},
            {"status": 401, "body": "you sent <{authorization}>"},
        ],
    )

    sent = post(emu, "x", headers={"Authorization": "Bearer abc"})
    unsent = post(emu, "x")

    assert sent.text == "you sent <Bearer abc>"
    assert unsent.text == "you sent <>"


def test_script__is_fifo_and_normal_lets_one_request_through(emu):
    emu.script(Reply.loading(1.0), Reply.normal(), Reply.unavailable())

    statuses = [post(emu, "x").status_code for _ in range(4)]

    assert statuses == [503, 200, 503, 200]
    assert emu.pending_replies == 0


def test_script__wins_over_an_invalid_request(emu):
    emu.script(Reply.rate_limited())

    response = requests.post(emu.model_url(MODEL), data=b"garbage", timeout=10)

    assert response.status_code == 429
    assert emu.pending_replies == 0


def test_script__not_consumed_by_unknown_paths(emu):
    emu.script(Reply.unavailable())

    requests.post(emu.url + "/nope", json={"inputs": "x"}, timeout=10)

    assert emu.pending_replies == 1


def test_script__rejects_non_reply_objects(emu):
    with pytest.raises(TypeError):
        emu.script({"status": 503})


def test_answer_for__every_call_gets_the_reply_until_the_window_ends(emu):
    emu.script(Reply.unavailable())
    ends = emu.answer_for(0.6, Reply.loading(2.0))

    during = [post(emu, "x").status_code for _ in range(3)]
    time.sleep(max(0.0, ends - time.monotonic()) + 0.05)  # the window's own end, not a guess
    after = [post(emu, "x").status_code for _ in range(2)]

    assert during == [503, 503, 503]
    assert all(call.received_at < ends for call in emu.requests[:3])
    assert after == [503, 200]  # the script was kept for after the window
    assert emu.pending_replies == 0


def test_answer_for__zero_ends_it_and_reset_forgets_it(emu):
    emu.answer_for(60, Reply.rate_limited())
    assert post(emu, "x").status_code == 429

    emu.answer_for(0, Reply.rate_limited())
    assert post(emu, "x").status_code == 200
    emu.answer_for(60, Reply.rate_limited())
    emu.reset()
    assert post(emu, "x").status_code == 200
    with pytest.raises(TypeError):
        emu.answer_for(1, {"status": 429})
    with pytest.raises(ValueError):
        emu.answer_for(-1, Reply.rate_limited())


def test_reply_to_dict__round_trips_through_from_dict():
    for reply in [Reply.loading(2.0), Reply.normal(), Reply.hang(1), Reply.server_error(502)]:
        assert Reply.from_dict(reply.to_dict()) == reply
    assert Reply.normal().to_dict()["normal"] is True


def test_reply_from_dict__rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError):
        Reply.from_dict({"status": 503, "retry": True})
    with pytest.raises(ValueError):
        Reply.from_dict({"status": "503"})
    with pytest.raises(ValueError):
        Reply.from_dict({"delay": -1})


# The request log.


def test_log__records_lowercased_headers_parsed_body_and_status(emu):
    before = time.monotonic()
    post(
        emu,
        ["good", "bad"],
        parameters={"top_k": 1},
        headers={"Authorization": "Bearer hf_x", "X-Custom": "1"},
    )
    post(emu, "solo")

    log = emu.requests
    assert len(log) == 2
    first = log[0]
    assert isinstance(first, ReceivedRequest)
    assert first.method == "POST"
    assert first.path == f"/models/{MODEL}"
    assert first.model_id == MODEL
    assert first.headers["authorization"] == "Bearer hf_x"
    assert first.headers["x-custom"] == "1"
    assert all(name == name.lower() for name in first.headers)
    assert first.body == {"inputs": ["good", "bad"], "parameters": {"top_k": 1}}
    assert json.loads(first.raw) == first.body
    assert first.status == 200
    assert before <= first.received_at <= log[1].received_at
    assert first.inputs == ["good", "bad"]
    assert log[1].inputs == ["solo"]
    assert emu.texts_seen() == ["good", "bad", "solo"]


def test_log__unparsable_body_has_no_body_and_no_inputs(emu):
    requests.post(emu.model_url(MODEL), data=b"\xff garbage", timeout=10)

    entry = emu.requests[0]
    assert entry.body is None
    assert entry.raw == b"\xff garbage"
    assert entry.inputs == []
    assert entry.status == 400


def test_log__snapshot_does_not_change_after_more_requests(emu):
    post(emu, "one")
    snapshot = emu.requests

    post(emu, "two")

    assert len(snapshot) == 1
    assert len(emu.requests) == 2


def test_wait_for_requests__returns_when_enough_arrive_and_times_out_otherwise(emu):
    thread = threading.Thread(target=lambda: (time.sleep(0.2), post(emu, "late")))
    thread.start()

    log = emu.wait_for_requests(1, timeout=5)
    thread.join()

    assert log[0].inputs == ["late"]
    with pytest.raises(TimeoutError):
        emu.wait_for_requests(2, timeout=0.2)


def test_reset__clears_script_and_log_but_keeps_config():
    with InferenceAPIEmulator(shape="flat", max_batch=2) as emu:
        emu.script(Reply.unavailable())
        post(emu, "x")
        emu.script(Reply.unavailable())

        emu.reset()

        assert emu.requests == []
        assert emu.pending_replies == 0
        assert isinstance(post(emu, "x").json()[0], dict)
        assert post(emu, ["a", "b", "c"]).status_code == 422


# Control routes.


def test_control_script__queues_replies_given_as_json(emu):
    replies = [
        Reply.loading(0.5).to_dict(),
        {"normal": True},
        {"status": 500, "json": {"error": "boom"}},
    ]

    scripted = requests.post(emu.url + "/_emulator/script", json=replies, timeout=10)

    assert scripted.json() == {"scripted": 3, "pending": 3}
    assert post(emu, "x").json()["estimated_time"] == 0.5
    assert post(emu, "x").status_code == 200
    assert post(emu, "x").json() == {"error": "boom"}


def test_control_script__invalid_replies_answer_400_and_queue_nothing(emu):
    for body in [{"status": 503}, [{"status": 503}, {"bogus": 1}]]:
        response = requests.post(emu.url + "/_emulator/script", json=body, timeout=10)
        assert response.status_code == 400
    assert emu.pending_replies == 0


@pytest.mark.parametrize(
    ("header", "value", "served"),
    [
        ("Authorization", "Bearer hf_real_token_by_mistake", "Bearer [redacted]"),
        ("Authorization", "Token abc123", "Token [redacted]"),
        ("Authorization", "hf_bare_token", "[redacted]"),
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz", "Basic [redacted]"),
        ("Cookie", "sessionid=abc", "[redacted]"),
        ("X-Api-Key", "k-123", "[redacted]"),
    ],
)
def test_control_requests__credentials_redacted_keeping_the_scheme(emu, header, value, served):
    post(emu, "hello", headers={header: value})

    log = requests.get(emu.url + "/_emulator/requests", timeout=10)

    assert log.json()[0]["headers"][header.lower()] == served
    assert value.split()[-1] not in log.text
    assert emu.requests[0].headers[header.lower()] == value  # in process: as sent


def test_control_requests__no_authorization_header__none_shown(emu):
    post(emu, "hello")

    log = requests.get(emu.url + "/_emulator/requests", timeout=10).json()

    assert "authorization" not in log[0]["headers"]


def test_control_requests__serves_the_log_as_json_and_is_not_logged(emu):
    post(emu, "hello", headers={"X-Trace": "abc"})

    log = requests.get(emu.url + "/_emulator/requests", timeout=10).json()
    again = requests.get(emu.url + "/_emulator/requests", timeout=10).json()

    assert len(log) == 1 == len(again)
    assert log[0]["model_id"] == MODEL
    assert log[0]["body"] == {"inputs": "hello"}
    assert log[0]["headers"]["x-trace"] == "abc"
    assert log[0]["status"] == 200
    assert json.loads(log[0]["raw"]) == {"inputs": "hello"}


def test_control_reset__clears_log_and_script(emu):
    emu.script(Reply.unavailable())
    post(emu, "x")
    emu.script(Reply.unavailable())

    response = requests.post(emu.url + "/_emulator/reset", timeout=10)

    assert response.status_code == 200
    assert emu.requests == []
    assert emu.pending_replies == 0


def test_control_count__how_many_requests_were_answered_since_the_reset(emu):
    post(emu, "x")
    post(emu, ["y", "z"])
    before = requests.get(emu.url + "/_emulator/count", timeout=10).json()
    emu.reset()
    after = requests.get(emu.url + "/_emulator/count", timeout=10).json()

    assert before == {"requests": 2}
    assert after == {"requests": 0}
    assert emu.requests == []  # the control routes are not logged


def test_control__health_answers_ok_and_unknown_control_path_404(emu):
    assert requests.get(emu.url + "/_emulator/health", timeout=10).json() == {"status": "ok"}
    assert requests.get(emu.url + "/_emulator/nope", timeout=10).status_code == 404
    assert emu.requests == []


# Lifecycle and CLI.


def test_lifecycle__url_needs_start_and_stop_releases_the_port():
    emu = InferenceAPIEmulator()
    with pytest.raises(RuntimeError):
        emu.url  # noqa: B018

    url = emu.start().url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    emu.stop()
    emu.stop()

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url + f"/models/{MODEL}", json={"inputs": "x"}, timeout=2)


def test_lifecycle__stop_ends_a_hanging_reply_promptly():
    emu = InferenceAPIEmulator().start()
    emu.script(Reply.hang(30))
    answers = []
    thread = threading.Thread(target=lambda: answers.append(post(emu, "x", timeout=30)))
    thread.start()
    deadline = time.monotonic() + 5
    while emu.pending_replies and time.monotonic() < deadline:  # the hang has been picked up
        time.sleep(0.01)

    started = time.monotonic()
    emu.stop()
    thread.join(timeout=5)

    assert time.monotonic() - started < 2
    assert [answer.status_code for answer in answers] == [200]


def test_config__rejects_invalid_values():
    with pytest.raises(ValueError):
        InferenceAPIEmulator(shape="tree")
    with pytest.raises(ValueError):
        InferenceAPIEmulator(max_batch=0)
    with pytest.raises(ValueError):
        InferenceAPIEmulator(latency=-1)
    with pytest.raises(ValueError):
        InferenceAPIEmulator(labels={"m": []})


def test_cli__serves_on_the_printed_port_until_terminated():
    options = ["--shape", "flat", "--token", "cli-token", "--max-batch", "2"]
    with EmulatorCLI(*options, "--latency", "0.05", "--per-text", "0.1") as cli:
        match = re.fullmatch(
            r"Inference API emulator listening on (http://127\.0\.0\.1:(\d+)) "
            r"\(route: /models/\{model_id\}\)\n",
            cli.line,
        )
        assert match, cli.line
        assert match.group(2) != "0"
        url = f"{match.group(1)}/models/{MODEL}"
        auth = {"Authorization": "Bearer cli-token"}

        ok = requests.post(url, json={"inputs": "great"}, headers=auth, timeout=10)
        started = time.monotonic()
        requests.post(url, json={"inputs": ["a", "b"]}, headers=auth, timeout=10)
        two_texts = time.monotonic() - started
        unauthorized = requests.post(url, json={"inputs": "great"}, timeout=10)
        too_big = requests.post(url, json={"inputs": ["a", "b", "c"]}, headers=auth, timeout=10)

        assert ok.json()[0]["label"] == "POSITIVE"
        assert unauthorized.status_code == 401
        assert too_big.status_code == 422
        assert two_texts >= 0.05 + 2 * 0.1  # the latency, and the cost of each text

    assert cli.returncode == 0, cli.stderr
    assert "Warning" not in cli.stderr


def test_poison__every_call_holding_the_text_gets_the_reply(emulator_for_poison):
    emulator = emulator_for_poison
    emulator.poison("bad apple")
    emulator.poison("rate me", Reply.rate_limited(retry_after=3))

    alone = requests.post(emulator.model_url("m/x"), json={"inputs": "bad apple"}, timeout=5)
    batch = requests.post(
        emulator.model_url("m/x"), json={"inputs": ["fine", "bad apple"]}, timeout=5
    )
    limited = requests.post(emulator.model_url("m/x"), json={"inputs": ["rate me"]}, timeout=5)
    clean = requests.post(emulator.model_url("m/x"), json={"inputs": ["fine", "good"]}, timeout=5)

    assert (alone.status_code, batch.status_code) == (500, 500)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert clean.status_code == 200 and len(clean.json()) == 2
    emulator.reset()
    again = requests.post(emulator.model_url("m/x"), json={"inputs": "bad apple"}, timeout=5)
    assert again.status_code == 200


def test_poison__refuses_what_is_not_a_reply(emulator_for_poison):
    with pytest.raises(TypeError, match="expected a Reply"):
        emulator_for_poison.poison("x", {"status": 500})


@pytest.fixture
def emulator_for_poison():
    with InferenceAPIEmulator() as emulator:
        yield emulator


def test_many_clients_connecting_at_once__every_one_answered(emu):
    """64 clients, a new connection per request: none is reset while the server is busy."""
    from concurrent.futures import ThreadPoolExecutor

    emu.latency = 0.05
    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(lambda n: post(emu, f"text {n}").status_code, range(320)))

    assert statuses == [200] * 320
    assert len(emu.requests) == 320
