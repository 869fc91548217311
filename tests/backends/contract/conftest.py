"""The backend contract suite: the same tests run against every backend the app ships.

Each backend comes in through a :class:`Maker`: how to build it, what its model's labels
are, and how to make its next call fail in each way the contract names. The suite's
tests take the ``rig`` fixture, which is parametrised over :data:`MAKERS`, so every test
runs once per backend (``pytest tests/backends/contract -k tei`` runs one backend's).

The HTTP backends talk to the loopback emulator over real HTTP (the session's emulator,
reset for each test): the Hugging Face backend to its ``/models/{model_id}`` route, the TEI
backend to its TEI mode. The offline and locmem backends run in process.

Adding a backend is one entry in :data:`MAKERS` (see :func:`local_maker`).

A case the backend cannot take part in is skipped with the maker's reason, never silently
(the names are in ``helpers.py``): ``BATCH`` when the backend takes one text per call,
``ERRORS`` (or one kind of ``ERROR_KINDS``) when it cannot fail that way, ``SENTIMENT`` when
its model reads no sentiment. A maker that lacks one and gives no reason fails the test.
A maker that builds its backend from ``rig.base_url`` gets ``connection_refused`` by pointing
the rig at a closed port (``Rig.point_at_closed_port``).
"""

import pytest
from django.conf import settings as django_settings

from django_textclass.backends import huggingface, locmem, offline, tei
from django_textclass.exceptions import (
    InvalidResponseError,
    PermanentBackendError,
    TransientBackendError,
)
from django_textclass.testing import Reply, TEIMode
from tests.backends.contract.helpers import ERRORS, MODEL, READ_TIMEOUT, SENTIMENT, Maker, Rig

# --- the makers ---------------------------------------------------------------------------


def _scripted(reply):
    return lambda rig: rig.emulator.script(reply)


def _hang(rig):
    rig.emulator.script(Reply.hang(READ_TIMEOUT * 4))


def _http_errors(**own):
    """The provokers every HTTP backend shares, with the ones of its protocol (``own``)."""
    return {
        "server_error": _scripted(Reply.server_error(500)),
        "malformed_answer": _scripted(Reply.malformed()),
        "wrong_shape": _scripted(Reply.wrong_shape()),
        "timeout": _hang,
        "connection_refused": Rig.point_at_closed_port,
        **own,
    }


def huggingface_maker():
    return Maker(
        name="huggingface",
        build=lambda rig: huggingface.Backend(
            alias="contract-hf",
            API_URL=rig.base_url + "/models/{model_id}",
            TOKEN="hf_contract_suite",
            MAX_BATCH_SIZE=8,
            READ_TIMEOUT=READ_TIMEOUT,
            CONNECT_TIMEOUT=READ_TIMEOUT,
        ),
        errors=_http_errors(
            rate_limited=_scripted(Reply.rate_limited(retry_after=1)),
            unavailable=_scripted(Reply.unavailable()),
            unauthorized=_scripted(Reply.unauthorized()),
            input_refused=_scripted(Reply.error(422, "Input is too long for this model")),
        ),
    )


def tei_maker():
    return Maker(
        name="tei",
        setup=lambda rig: setattr(rig.emulator, "tei", TEIMode(model_id=MODEL)),
        build=lambda rig: tei.Backend(
            alias="contract-tei",
            URL=rig.base_url,
            READ_TIMEOUT=READ_TIMEOUT,
            CONNECT_TIMEOUT=READ_TIMEOUT,
        ),
        errors=_http_errors(
            rate_limited=_scripted(Reply.tei_error("Overloaded")),
            unavailable=_scripted(Reply.tei_error("Unhealthy")),
            unauthorized=_scripted(Reply(401)),
            input_refused=_scripted(
                Reply.tei_error(
                    "Validation",
                    "Input validation error: `inputs` must have less than 512 tokens. Given: 1002",
                )
            ),
        ),
    )


def offline_maker():
    return Maker(
        name="offline",
        build=lambda rig: offline.Backend(alias="contract-offline"),
        lacks={
            ERRORS: "scores in process with VADER: no server to answer with an error, "
            "nothing to time out"
        },
    )


def _raise(error):
    def provoke(rig):
        locmem.Backend.script.append(error)

    return provoke


def locmem_maker():
    """The locmem backend raises what its script holds: the way a user's test fails a call."""
    return Maker(
        name="locmem",
        build=lambda rig: locmem.Backend(alias="contract-locmem"),
        setup=lambda rig: locmem.Backend.reset(),
        teardown=locmem.Backend.reset,
        errors={
            "rate_limited": _raise(
                TransientBackendError("HTTP 429", code="http_429", status_code=429, retry_after=1.0)
            ),
            "unavailable": _raise(
                TransientBackendError(
                    "HTTP 503", code="http_503", status_code=503, model_loading=True
                )
            ),
            "server_error": _raise(
                TransientBackendError("HTTP 500", code="http_500", status_code=500)
            ),
            "unauthorized": _raise(
                PermanentBackendError("HTTP 401", code="http_401", status_code=401)
            ),
            "input_refused": _raise(
                PermanentBackendError("HTTP 422", code="http_422", status_code=422)
            ),
            "malformed_answer": _raise(InvalidResponseError("not JSON", status_code=200)),
            "wrong_shape": _raise(InvalidResponseError("not a ranking", status_code=200)),
            "timeout": _raise(TransientBackendError("no answer", code="timeout")),
            "connection_refused": _raise(TransientBackendError("refused", code="connection_error")),
        },
    )


_tiny_model = []


def _local_backend(rig):
    # Imported here: without transformers and torch the import skips this test (or fails it
    # when the run requires them), not the whole suite.
    from tests.backends import local_model

    if not _tiny_model:  # built once per test run, in the run's own folder
        _tiny_model.append(local_model.build_model(django_settings.RUN_DIR / "contract-model"))
    return local_model.make_backend(_tiny_model[0])


def local_maker():
    """The local transformers backend, with the tiny random model of ``local_model.py``."""
    return Maker(
        name="local",
        build=_local_backend,
        labels=("NEGATIVE", "NEUTRAL", "POSITIVE"),  # local_model.LABELS
        lacks={
            ERRORS: "runs the model in process: no server to fail, nothing to time out",
            SENTIMENT: "a random model: no text reads more positive than another",
        },
    )


#: Every backend under the contract; one more is one more entry.
MAKERS = [huggingface_maker(), tei_maker(), offline_maker(), locmem_maker(), local_maker()]


@pytest.fixture(params=MAKERS, ids=lambda maker: maker.name)
def rig(request, emulator):
    """A :class:`Rig` for each maker in :data:`MAKERS`."""
    maker = request.param
    rig = Rig(maker, emulator)
    if maker.setup is not None:
        maker.setup(rig)
    try:
        yield rig
    finally:
        rig.close()
        emulator.tei = None
        if maker.teardown is not None:
            maker.teardown()
