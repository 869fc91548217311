"""What the contract suite's makers, fixture and tests share: the rig and the error kinds.

See ``conftest.py`` for the makers and how to add one.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pytest

from django_textclass.exceptions import (
    InvalidResponseError,
    PermanentBackendError,
    TransientBackendError,
)
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
        errors: ``{kind: provoke(rig)}``: make the next call fail that way.
        lacks: ``{capability or error kind: why the backend cannot}``, the skip reasons.
        setup: ``setup(rig)`` before the backend is built (a mode of the emulator), if any.
        teardown: ``teardown()`` after the test (state a backend keeps on its class).
    """

    name: str
    build: Callable
    labels: tuple = ("POSITIVE", "NEGATIVE")
    default_function: str = "softmax"
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

    def require_batch(self):
        """Skip, with the maker's reason, when the backend takes one text per call."""
        if not self.backend.supports_batch:
            assert BATCH in self.maker.lacks, (
                f"maker {self.maker.name!r} must say why it takes one text per call"
            )
            self.require(BATCH)

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
