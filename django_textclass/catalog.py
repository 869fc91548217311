"""The model registry: ``TEXTCLASS["MODELS"]``, stable keys for the models a site uses.

A key (``"sentiment"``) names a backend alias, a model (a Hub repository id or a dedicated
endpoint's URL), default parameters and an optional revision::

    TEXTCLASS = {"MODELS": {
        "sentiment": {
            "MODEL": "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
            "PARAMETERS": {"top_k": 2},
            "REVISION": "714eb0f",
        },
    }}

Wherever a model id is accepted (``classify()``, the REST API, registrations, the commands)
a key is accepted too, and :func:`resolve` turns either into a :class:`Target`: what a
request is stored with and sent to. Keys hold no ``/``, so an ``owner/name`` id is never
read as a key. With a registry, a name without ``/`` must be a key: a Hub id is then written
``owner/name``, so the two never collide (docs/models.md).

Named *catalog* so that it is not mistaken for the content registry
(``TEXTCLASS["REGISTRY"]``, :mod:`django_textclass.content.registry`). Settings are read at
every call, never captured.
"""

import re
from dataclasses import dataclass

from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError
from django_textclass.types import Parameters, validate_model_id

#: A key: a lower-case letter, then lower-case letters, digits, ``_`` or ``-``; at most 64.
KEY_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
#: The keys an entry may have.
ENTRY_KEYS = frozenset({"BACKEND", "MODEL", "PARAMETERS", "REVISION"})
#: The keys of an entry's ``PARAMETERS``.
PARAMETER_KEYS = frozenset({"function_to_apply", "top_k"})
#: Longest model id or endpoint URL (the ``model_id`` column is 200 characters wide).
MAX_MODEL_LENGTH = 200
#: Longest revision (a branch, a tag or a 40-character commit hash fits).
MAX_REVISION_LENGTH = 100
_REVISION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


@dataclass(frozen=True)
class Target:
    """What one request is stored with and sent to.

    Attributes:
        key: the registry key it was named by, or ``""`` when named by a model id.
        backend: the ``TEXTCLASS["BACKENDS"]`` alias that serves it.
        model_id: a Hub repository id, or (from a key only) a dedicated endpoint's URL.
        revision: the key's ``REVISION``, or ``""``.
        parameters: the :class:`~django_textclass.types.Parameters` sent.
    """

    key: str
    backend: str
    model_id: str
    revision: str
    parameters: Parameters


def models_setting():
    """``TEXTCLASS["MODELS"]``, or ``{}`` when it is not a dict (check ``E040`` says so)."""
    models = app_settings.MODELS
    return models if isinstance(models, dict) else {}


def key_names():
    """The configured keys, sorted."""
    return sorted(name for name in models_setting() if isinstance(name, str))


def is_key(name):
    """Whether ``name`` is a configured key."""
    return isinstance(name, str) and name in models_setting()


def is_endpoint_url(value):
    """Whether ``value`` is written as an endpoint URL (``http://`` or ``https://``)."""
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def problems(name, spec):
    """What is wrong with the entry ``name``: a list of ``(check id, message)``; empty if none.

    The backend alias is checked against ``BACKENDS`` too.
    """
    where = f"TEXTCLASS['MODELS'][{name!r}]"
    if not isinstance(name, str) or not KEY_RE.fullmatch(name):
        return [
            (
                "textclass.E041",
                f"{where}: a key is a lower-case letter followed by up to 63 "
                "lower-case letters, digits, '_' or '-' (no '/', so that no owner/name Hub id "
                "reads as a key)",
            )
        ]
    if not isinstance(spec, dict):
        return [
            (
                "textclass.E042",
                f"{where} must be a dict with MODEL, and optionally "
                "BACKEND, PARAMETERS and REVISION",
            )
        ]
    found = []
    unknown = sorted(str(key) for key in set(spec) - ENTRY_KEYS)
    if unknown:
        found.append(("textclass.E042", f"{where} has unknown keys: {', '.join(unknown)}"))
    found += _model_problems(where, spec.get("MODEL"))
    alias = spec.get("BACKEND")
    backends = app_settings.BACKENDS
    if alias is not None and (
        not isinstance(alias, str) or not isinstance(backends, dict) or alias not in backends
    ):
        configured = ", ".join(sorted(backends)) if isinstance(backends, dict) else "none"
        found.append(
            (
                "textclass.E043",
                f"{where}: BACKEND {alias!r} is not an alias of "
                f"TEXTCLASS['BACKENDS'] (configured: {configured})",
            )
        )
    found += _parameter_problems(where, spec.get("PARAMETERS"))
    revision = spec.get("REVISION")
    if revision is not None and not is_revision(revision):
        found.append(
            (
                "textclass.E045",
                f"{where}: REVISION must be a branch, tag or commit "
                f"hash (letters, digits, '.', '_', '-', '/'; at most "
                f"{MAX_REVISION_LENGTH} characters), not {revision!r}",
            )
        )
    return found


def is_revision(value):
    """Whether ``value`` is a revision name: a branch, tag or commit (no ``..``, no spaces)."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_REVISION_LENGTH
        and bool(_REVISION_RE.fullmatch(value))
        and ".." not in value
    )


def _model_problems(where, model):
    if model is None:
        return [
            ("textclass.E042", f"{where} has no MODEL (a Hub repository id or an endpoint URL)")
        ]
    if is_endpoint_url(model):
        if len(model) > MAX_MODEL_LENGTH or any(c.isspace() for c in model):
            return [
                (
                    "textclass.E042",
                    f"{where}: MODEL must be a URL of at most "
                    f"{MAX_MODEL_LENGTH} characters, without spaces",
                )
            ]
        return []
    try:
        validate_model_id(model)
    except InvalidInputError:
        return [
            (
                "textclass.E042",
                f"{where}: MODEL {model!r} is neither a Hugging Face "
                "repository id (owner/name) nor an http(s) endpoint URL",
            )
        ]
    return []


def _parameter_problems(where, parameters):
    if parameters is None:
        return []
    if not isinstance(parameters, dict):
        return [
            (
                "textclass.E044",
                f"{where}: PARAMETERS must be a dict with function_to_apply and/or top_k",
            )
        ]
    unknown = sorted(str(key) for key in set(parameters) - PARAMETER_KEYS)
    if unknown:
        return [
            (
                "textclass.E044",
                f"{where}: PARAMETERS has unknown keys: "
                f"{', '.join(unknown)} (function_to_apply and top_k are known)",
            )
        ]
    try:
        Parameters(parameters.get("function_to_apply"), parameters.get("top_k"))
    except InvalidInputError as exc:
        return [("textclass.E044", f"{where}: PARAMETERS {exc}")]
    return []


def entry(key):
    """The :class:`Target` of the configured ``key``, with its default parameters.

    Raises:
        TextClassConfigurationError: ``key`` is not configured, or its entry is wrong
            (the message is the system check's).
    """
    models = models_setting()
    if key not in models:
        configured = ", ".join(key_names()) or "none"
        raise TextClassConfigurationError(
            f"TEXTCLASS['MODELS'] has no key {key!r} (configured: {configured})."
        )
    spec = models[key]
    found = problems(key, spec)
    if found:
        raise TextClassConfigurationError(found[0][1] + ".")
    parameters = spec.get("PARAMETERS") or {}
    return Target(
        key=key,
        backend=spec.get("BACKEND") or app_settings.DEFAULT_BACKEND,
        model_id=spec["MODEL"],
        revision=spec.get("REVISION") or "",
        parameters=Parameters(parameters.get("function_to_apply"), parameters.get("top_k")),
    )


def resolve(model=None, *, backend=None, function_to_apply=None, top_k=None):
    """The :class:`Target` of ``model``: a configured key, or a Hub repository id.

    A key brings its backend, model, revision and default parameters; ``function_to_apply``
    and ``top_k`` given here replace its defaults. A key decides its backend: ``backend``
    may only repeat it. A model id gets ``backend`` (default ``DEFAULT_BACKEND``) and no
    revision. ``model=None`` is ``DEFAULT_MODEL``, which may itself be a key.

    Raises:
        InvalidInputError: (field ``model``) neither a key nor a Hub id (URLs are refused:
            an endpoint URL is configured as a key's ``MODEL``; with a registry, a name
            without ``/`` must be a key, see :func:`validate_name`); (field ``backend``) a
            backend that is not the key's; or a parameter out of range.
        TextClassConfigurationError: the key's entry is wrong.
    """
    name = app_settings.DEFAULT_MODEL if model is None else model
    if backend is not None and not isinstance(backend, str):
        raise InvalidInputError("backend", "must be the alias of a backend (a string) or None")
    if is_key(name):
        target = entry(name)
        if backend is not None and backend != target.backend:
            raise InvalidInputError(
                "backend",
                f"the model key {name!r} is served by the backend "
                f"{target.backend!r}; leave backend unset",
            )
        defaults = target.parameters
        parameters = Parameters(
            defaults.function_to_apply if function_to_apply is None else function_to_apply,
            defaults.top_k if top_k is None else top_k,
        )
        return Target(target.key, target.backend, target.model_id, target.revision, parameters)
    validate_name(name)
    return Target(
        "", backend or app_settings.DEFAULT_BACKEND, name, "", Parameters(function_to_apply, top_k)
    )


def validate_name(name):
    """Return ``name`` if it is a configured key or a Hub repository id, else raise.

    With a registry (``TEXTCLASS["MODELS"]`` not empty) a name without ``/`` must be one of
    its keys: a Hub id is then written ``owner/name``, so keys and ids can never be mistaken
    for each other, and a misspelt key is refused rather than sent as a model id. Without a
    registry, any Hub id, as before.

    Raises:
        InvalidInputError: (field ``model``) none of these.
    """
    if is_key(name):
        return name
    try:
        validate_model_id(name)
    except InvalidInputError:
        if models_setting():
            raise InvalidInputError(
                "model",
                "neither a model key of TEXTCLASS['MODELS'] nor a valid Hugging Face "
                "repository id (owner/name)",
            ) from None
        raise
    if "/" not in name and models_setting():
        raise InvalidInputError(
            "model",
            f"not a model key of TEXTCLASS['MODELS'] (configured: "
            f"{', '.join(key_names())}); a Hub model id is written owner/name",
        )
    return name


def endpoint_urls():
    """The endpoint URLs configured as the ``MODEL`` of a key (whatever else the entry holds)."""
    return {
        spec["MODEL"]
        for spec in models_setting().values()
        if isinstance(spec, dict) and is_endpoint_url(spec.get("MODEL"))
    }


def may_send(model_id):
    """Whether a stored ``model_id`` may reach a backend: a Hub id, or a configured endpoint.

    A stored row may come from anywhere (the ORM, a fixture, a bulk import); a URL it holds
    is only called when the site's own settings name it, so a row can never steer a call
    (and the site's token) to another host or path.
    """
    if is_endpoint_url(model_id):
        return model_id in endpoint_urls()
    try:
        validate_model_id(model_id)
    except InvalidInputError:
        return False
    return True
