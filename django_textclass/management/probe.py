"""One call to each configured model, straight through its backend: ``textclass_check``'s work.

Nothing is stored and nothing goes through the queue: each model's backend is built afresh
from ``TEXTCLASS`` (as ``manage.py check`` builds them), called once with the probe text,
timed and closed. The answer's raw shape is read where the backend speaks HTTP; a failure is
explained by :mod:`django_textclass.diagnosis`.
"""

import time
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

import requests

from django_textclass import catalog, diagnosis
from django_textclass.backends import backend_config, load_backend_class
from django_textclass.backends.huggingface import RETIRED_HOST, ROUTER_HOST
from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError

#: The probe text when none is given: the Inference API documentation's own example.
DEFAULT_TEXT = "I like you. I love you"


@dataclass
class Outcome:
    """What one model answered to the probe, or how it failed."""

    name: str
    key: str
    backend: str
    model_id: str
    revision: str
    url: str = ""
    ok: bool = False
    latency_ms: int = None
    shape: str = None
    ranking: list = field(default_factory=list)
    revision_sent: bool = False
    error: dict = None

    def as_dict(self):
        """The outcome as plain JSON values."""
        return {
            "name": self.name,
            "key": self.key or None,
            "backend": self.backend,
            "model": self.model_id,
            "revision": self.revision or None,
            "revision_sent": self.revision_sent,
            "url": self.url or None,
            "ok": self.ok,
            "latency_ms": self.latency_ms,
            "shape": self.shape,
            "labels": [item["label"] for item in self.ranking],
            "ranking": self.ranking,
            "error": self.error,
        }


def targets(name=None):
    """The models to check, as ``[(name, Target or the configuration error)]``.

    ``name`` alone (a key, or a Hub id on ``DEFAULT_BACKEND``); else every key; without a
    registry, ``DEFAULT_MODEL`` on ``DEFAULT_BACKEND``. A key whose entry is wrong comes
    with its :class:`TextClassConfigurationError`, so that it is reported as failed.

    Raises:
        InvalidInputError: ``name`` is neither a key nor a Hub id.
    """
    if name is not None:
        catalog.validate_name(name)
    names = [name] if name is not None else catalog.key_names()
    if not names:
        names = [app_settings.DEFAULT_MODEL]
    found = []
    for each in names:
        try:
            found.append((each, catalog.resolve(each)))
        except TextClassConfigurationError as exc:
            found.append((each, exc))
        except InvalidInputError as exc:  # DEFAULT_MODEL itself is wrong (check E005)
            found.append(
                (
                    str(each),
                    TextClassConfigurationError(
                        f"TEXTCLASS['DEFAULT_MODEL'] {each!r}: {exc.reason}."
                    ),
                )
            )
    return found


def probe(name, target, text):
    """Call ``target``'s backend once with ``text``; return an :class:`Outcome`.

    ``target`` may be the configuration error of a key whose entry is wrong.
    """
    if isinstance(target, Exception):
        return _failed(Outcome(name, name, "", "", ""), target, None)
    outcome = Outcome(name, target.key, target.backend, target.model_id, target.revision)
    try:
        backend = build_backend(target.backend)
    except TextClassConfigurationError as exc:
        return _failed(outcome, exc, None)
    answers = []
    post_json = getattr(backend, "post_json", None)
    if post_json is not None:  # this instance is the probe's own: nothing else sees the wrap

        def recording(*args, **kwargs):
            answers.append(post_json(*args, **kwargs))
            return answers[-1]

        backend.post_json = recording
    outcome.url = _display_url(_url_of(backend, target.model_id))
    outcome.revision_sent = bool(target.revision) and backend.supports_revision
    started = time.monotonic()
    try:
        (ranking,) = backend.classify(
            [text],
            target.parameters,
            model_id=target.model_id,
            use_cache=False,
            wait_for_model=False,
            revision=target.revision or None,
        )
    except Exception as exc:  # noqa: BLE001 - every failure is reported, never raised
        outcome.latency_ms = _ms_since(started)
        return _failed(outcome, exc, backend)
    finally:
        backend.close()
    outcome.latency_ms = _ms_since(started)
    outcome.ok = True
    outcome.shape = diagnosis.describe_shape(answers[-1]) if answers else "built in process"
    outcome.ranking = [
        {"label": _scrub(backend, item.label), "score": round(item.score, 4)}
        for item in ranking.scores
    ]
    return outcome


def build_backend(alias):
    """A new instance of the backend configured under ``alias`` (not the shared one).

    Raises:
        TextClassConfigurationError: the alias, its class or its options are wrong.
    """
    config = backend_config(alias)
    backend_class = load_backend_class(config.get("BACKEND", ""))
    options = config.get("OPTIONS") or {}
    if not isinstance(options, dict):
        raise TextClassConfigurationError(f"TEXTCLASS backend {alias!r}: OPTIONS must be a dict.")
    try:
        return backend_class(alias=alias, **options)
    except TypeError as exc:
        raise TextClassConfigurationError(
            f"TEXTCLASS backend {alias!r} rejects its OPTIONS: {exc}"
        ) from exc


def _failed(outcome, exc, backend):
    template = getattr(backend, "api_url", "") or ""
    per_model = "{model_id}" in template and not catalog.is_endpoint_url(outcome.model_id)
    path = "" if backend is None else f"{type(backend).__module__}.{type(backend).__qualname__}"
    problem = diagnosis.problem_of(exc, outcome.url, per_model, path)
    if problem.status in (404, 405) and answers_like_tei(backend, outcome.url):
        problem = replace(problem, tei_host=True)
    hint = diagnosis.diagnose(problem)
    outcome.error = {
        "code": problem.code,
        "status": problem.status,
        "message": _scrub(backend, problem.message),
        "hint": hint.text,
        "diagnosis": hint.name,
    }
    return outcome


def answers_like_tei(backend, url):
    """Whether the host of ``url`` answers ``GET /info`` as a TEI server does.

    Asked only after a 404 or 405 from a backend that is not the TEI backend itself, off the
    Hub's own hosts, with the headers the backend sends that host anyway (its token).
    """
    session = getattr(backend, "session", None)
    parts = urlsplit(url) if url else None
    if (
        session is None
        or parts is None
        or not parts.hostname
        or parts.hostname in (ROUTER_HOST, RETIRED_HOST)
        or f"{type(backend).__module__}.{type(backend).__qualname__}" == diagnosis.TEI_BACKEND
    ):
        return False
    try:
        headers = backend.build_headers(use_cache=True, wait_for_model=False)
    except (AttributeError, TypeError):
        headers = {}
    try:
        response = session.get(
            f"{parts.scheme}://{parts.netloc}/info", headers=headers, timeout=backend.timeout
        )
        info = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return False
    return isinstance(info, dict) and "max_client_batch_size" in info and "model_type" in info


def _url_of(backend, model_id):
    """Where a call for ``model_id`` goes: the backend's endpoint(), its URL, or ``""``."""
    endpoint = getattr(backend, "endpoint", None)
    if callable(endpoint):
        try:
            return endpoint(model_id)
        except Exception:  # noqa: BLE001 - the call itself reports why
            return ""
    for name in ("url", "api_url", "base_url"):
        value = getattr(backend, name, None)
        if isinstance(value, str):
            return value
    return ""


def _display_url(url):
    """``url`` without credentials, query or fragment (a key in a query string stays out)."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _scrub(backend, text):
    """``text`` with the backend's secrets replaced (labels and messages come from a server)."""
    scrub = getattr(backend, "_scrub", None)
    return scrub(text) if callable(scrub) else text


def _ms_since(started):
    return round((time.monotonic() - started) * 1000)
