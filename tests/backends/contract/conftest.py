"""The backend contract suite: the same tests run against every backend the app ships.

Each backend comes in through a :class:`Maker`: how to build it, what its model's labels
are, and how to make its next call fail in each way the contract names. The suite's
tests take the ``rig`` fixture, which is parametrised over :data:`MAKERS`, so every test
runs once per backend (``pytest tests/backends/contract -k tei`` runs one backend's).

The HTTP backends talk to the loopback emulator over real HTTP (the session's emulator,
reset for each test): the Hugging Face backend to its ``/models/{model_id}`` route, the TEI
backend to its TEI mode. The offline and locmem backends run in process.

Adding a backend (the local transformers model, say) is one entry in :data:`MAKERS`::

    def local_maker():
        return Maker(
            name="local",
            build=lambda rig: local.Backend(alias="contract-local", MODEL_PATH=...),
            labels=("LABEL_0", "LABEL_1"),
            sentiment=False,  # a random model: no text is more positive than another
            lacks={ERRORS: "runs in process: no server to fail, nothing to time out"},
        )

    MAKERS = [..., local_maker()]

A case the backend cannot take part in is skipped with the maker's reason, never silently:
:data:`BATCH` when the backend takes one text per call, :data:`ERRORS` (or one error kind
of :data:`ERROR_KINDS`) when it cannot fail that way, :data:`SENTIMENT` when its model
reads no sentiment. A maker that builds its backend from ``rig.base_url`` gets
``connection_refused`` by pointing the rig at a closed port (:meth:`Rig.point_at_closed_port`).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pytest

from django_textclass.backends import huggingface, locmem, offline, tei
from django_textclass.exceptions import (
    InvalidResponseError,
    PermanentBackendError,
    TransientBackendError,
)
from django_textclass.testing import Reply, TEIMode
from django_textclass.types import Parameters

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
#: A port nothing listens on (the discard service is never run on the test machines).
CLOSED_URL = "http://127.0.0.1:9"
#: Seconds an HTTP backend of the suite waits for an answer; a hang lasts longer.
READ_TIMEOUT = 0.5

# Capabilities a maker may lack (keys of Maker.lacks).
BATCH = "batch"
ERRORS = "errors"
SENTIMENT = "sentiment"


@dataclass(frozen=True)
class Expected:
    """What a provoked error must be: its family, and its status or code when it has one."""

    family: type
    status: int | None = None
    code: str | None = None


#: Each way a call can fail, and what the contract says the backend raises for it.
ERROR_KINDS = {
    "rate_limited": Expected(TransientBackendError, status=429),
    "unavailable": Expected(TransientBackendError, status=503),
    "server_error": Expected(TransientBackendError, status=500),
    "unauthorized": Expected(PermanentBackendError, status=401),
    "input_refused": Expected(PermanentBackendError, status=422),
    "malformed_answer": Expected(InvalidResponseError),
    "wrong_shape": Expected(InvalidResponseError),
    "timeout": Expected(TransientBackendError, code="timeout"),
    "connection_refused": Expected(TransientBackendError, code="connection_error"),
}


@dataclass(frozen=True)
class Maker:
    """One backend under the contract.

    Attributes:
        name: the test id.
        build: ``build(rig) -> backend``; read ``rig.base_url`` (the emulator's URL, or a
            closed port) and ``rig.emulator`` when the backend talks HTTP.
        labels: every label of the model the backend serves for :data:`MODEL`.
        default_function: what a request without ``function_to_apply`` gets.
        sentiment: whether clearly positive and negative texts get different top labels.
        errors: ``{kind: provoke(rig)}``: make the next call fail that way.
        lacks: ``{capability or error kind: why the backend cannot}``, the skip reasons.
        setup: ``setup(rig)`` before the backend is built (a mode of the emulator), if any.
        teardown: ``teardown()`` after the test (state a backend keeps on its class).
    """

    name: str
    build: Callable
    labels: tuple = ("POSITIVE", "NEGATIVE")
    default_function: str = "softmax"
    sentiment: bool = True
    errors: Mapping = field(default_factory=dict)
    lacks: Mapping = field(default_factory=dict)
    setup: Callable | None = None
    teardown: Callable | None = None


class Rig:
    """One maker's backend in one test, with the emulator it may talk to."""

    def __init__(self, maker, emulator):
        self.maker = maker
        self.emulator = emulator
        self.base_url = emulator.url
        self._backend = None

    @property
    def backend(self):
        """The backend under test, built on first use."""
        if self._backend is None:
            self._backend = self.maker.build(self)
        return self._backend

    def classify(self, texts, *, function_to_apply=None, top_k=None, **flags):
        """``backend.classify`` for ``texts`` with those parameters, for :data:`MODEL`."""
        parameters = Parameters(function_to_apply=function_to_apply, top_k=top_k)
        return self.backend.classify(list(texts), parameters, model_id=MODEL, **flags)

    def require(self, capability):
        """Skip the test, with the maker's reason, when the backend lacks ``capability``."""
        if capability in self.maker.lacks:
            pytest.skip(f"{self.maker.name}: {self.maker.lacks[capability]}")

    def provoke(self, kind):
        """Make the backend's next call fail as ``kind`` (or skip, with the maker's reason)."""
        provoke = self.maker.errors.get(kind)
        if provoke is None:
            reason = self.maker.lacks.get(kind) or self.maker.lacks.get(ERRORS)
            assert reason, f"maker {self.maker.name!r} neither provokes nor explains {kind!r}"
            pytest.skip(f"{self.maker.name}: {reason}")
        provoke(self)

    def point_at_closed_port(self):
        """Rebuild the backend against a port where nothing listens."""
        self.close()
        self.base_url = CLOSED_URL

    def close(self):
        if self._backend is not None:
            self._backend.close()
            self._backend = None


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
            alias="contract-hf", API_URL=rig.base_url + "/models/{model_id}",
            TOKEN="hf_contract_suite", MAX_BATCH_SIZE=8, READ_TIMEOUT=READ_TIMEOUT,
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
            alias="contract-tei", URL=rig.base_url, READ_TIMEOUT=READ_TIMEOUT,
            CONNECT_TIMEOUT=READ_TIMEOUT,
        ),
        errors=_http_errors(
            rate_limited=_scripted(Reply.tei_error("Overloaded")),
            unavailable=_scripted(Reply.tei_error("Unhealthy")),
            unauthorized=_scripted(Reply(401)),
            input_refused=_scripted(Reply.tei_error(
                "Validation", "Input validation error: `inputs` must have less than 512 "
                "tokens. Given: 1002")),
        ),
    )


def offline_maker():
    return Maker(
        name="offline",
        build=lambda rig: offline.Backend(alias="contract-offline"),
        lacks={ERRORS: "scores in process with VADER: no server to answer with an error, "
                       "nothing to time out"},
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
            "rate_limited": _raise(TransientBackendError(
                "HTTP 429", code="http_429", status_code=429, retry_after=1.0)),
            "unavailable": _raise(TransientBackendError(
                "HTTP 503", code="http_503", status_code=503, model_loading=True)),
            "server_error": _raise(TransientBackendError(
                "HTTP 500", code="http_500", status_code=500)),
            "unauthorized": _raise(PermanentBackendError(
                "HTTP 401", code="http_401", status_code=401)),
            "input_refused": _raise(PermanentBackendError(
                "HTTP 422", code="http_422", status_code=422)),
            "malformed_answer": _raise(InvalidResponseError("not JSON", status_code=200)),
            "wrong_shape": _raise(InvalidResponseError("not a ranking", status_code=200)),
            "timeout": _raise(TransientBackendError("no answer", code="timeout")),
            "connection_refused": _raise(TransientBackendError(
                "refused", code="connection_error")),
        },
    )


#: Every backend under the contract; one more is one more entry (see the module docstring).
MAKERS = [huggingface_maker(), tei_maker(), offline_maker(), locmem_maker()]


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
