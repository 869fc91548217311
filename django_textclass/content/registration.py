"""One registration: which fields of a model are classified, with what, and its rules.

Built and validated by :func:`build` (from ``django_textclass.register()``) or by
:func:`from_settings` (from a ``TEXTCLASS["REGISTRY"]`` entry); the registry
(:mod:`django_textclass.content.registry`) holds them.
"""

from dataclasses import dataclass

from django.apps import apps
from django.utils.module_loading import import_string

from django_textclass import catalog
from django_textclass.conf import app_settings
from django_textclass.content.rules import Rule
from django_textclass.exceptions import (
    InvalidInputError,
    RegistrationError,
    TextClassConfigurationError,
)

SETTINGS_KEYS = {
    "FIELDS",
    "MODELS",
    "CONDITION",
    "LONG_TEXT",
    "RULES",
    "BACKEND",
    "FUNCTION_TO_APPLY",
    "TOP_K",
    "DATE_FIELD",
}


@dataclass(frozen=True)
class Registration:
    """How one model's instances are classified. Built by :meth:`Registry.register`.

    Attributes:
        model: the model class.
        fields: names of the attributes holding text (fields or properties).
        models: Hub model ids or keys of ``TEXTCLASS["MODELS"]``, or None for
            ``TEXTCLASS["DEFAULT_MODEL"]``.
        condition: None, a callable ``condition(obj) -> bool``, or its dotted path;
            an object for which it is false is not classified on save.
        long_text: a long-text policy spec, or None for ``LONG_TEXT_POLICY``.
        rules: threshold :class:`~django_textclass.content.rules.Rule` objects.
        backend, function_to_apply, top_k: as for ``classify()``.
        date_field: the date field ``textclass_backfill --since`` filters on.
        origin: ``"code"`` or ``"settings"``.
    """

    model: type
    fields: tuple
    models: tuple = None
    condition: object = None
    long_text: object = None
    rules: tuple = ()
    backend: str = None
    function_to_apply: str = None
    top_k: int = None
    date_field: str = None
    origin: str = "code"

    @property
    def label(self):
        """``app_label.ModelName``."""
        return self.model._meta.label

    @property
    def model_ids(self):
        """The Hub model ids and keys, the default model read now when none was given."""
        return self.models or (app_settings.DEFAULT_MODEL,)

    @property
    def policy(self):
        """The long-text policy object (the setting's default read now)."""
        from django_textclass.policies import from_spec

        return from_spec(self.long_text)

    def wants(self, obj):
        """Whether ``obj`` should be classified (its condition, if any, holds)."""
        condition = self.condition
        if condition is None:
            return True
        if isinstance(condition, str):
            condition = import_string(condition)
        return bool(condition(obj))

    def options(self):
        """Keyword arguments for ``services.submit()``."""
        return {
            "backend": self.backend,
            "function_to_apply": self.function_to_apply,
            "top_k": self.top_k,
        }


def build(
    model,
    fields,
    models=None,
    *,
    condition=None,
    long_text=None,
    rules=(),
    backend=None,
    function_to_apply=None,
    top_k=None,
    date_field=None,
    origin="code",
):
    """Validate arguments and return a :class:`Registration`.

    Raises:
        RegistrationError: an argument is wrong (the message says which); its
            ``check_id`` names the system check for the same problem.
    """
    from django_textclass.policies import from_spec

    meta = getattr(model, "_meta", None)
    if meta is None or meta.abstract:
        raise RegistrationError(f"{model!r} is not a concrete Django model", "textclass.E020")
    label = meta.label
    if isinstance(fields, str) or not fields or not all(isinstance(f, str) for f in fields):
        raise RegistrationError(
            f"{label}: fields must be a non-empty list of names", "textclass.E021"
        )
    for name in fields:
        if not hasattr(model, name):
            raise RegistrationError(
                f"{label}: {name!r} is not a field or attribute of the model", "textclass.E021"
            )
    if date_field is not None and not hasattr(model, date_field):
        raise RegistrationError(
            f"{label}: date_field {date_field!r} is not a field", "textclass.E021"
        )
    if models is not None:
        if isinstance(models, str) or not models:
            raise RegistrationError(
                f"{label}: models must be a non-empty list of Hub ids or model keys",
                "textclass.E022",
            )
        for model_id in models:
            try:
                catalog.validate_name(model_id)
            except InvalidInputError as exc:
                raise RegistrationError(f"{label}: {exc}", "textclass.E022") from exc
            try:
                catalog.resolve(model_id, backend=backend)
            except InvalidInputError as exc:  # a key served by another backend
                raise RegistrationError(f"{label}: {exc}", "textclass.E022") from exc
            except TextClassConfigurationError:
                pass  # the key's own entry is wrong: E040-E045 say so
        models = tuple(models)
    if condition is not None and not callable(condition) and not isinstance(condition, str):
        raise RegistrationError(
            f"{label}: condition must be a callable or its dotted path", "textclass.E023"
        )
    try:
        if long_text is not None:
            from_spec(long_text)
    except TextClassConfigurationError as exc:
        raise RegistrationError(f"{label}: {exc}", "textclass.E024") from exc
    try:
        rules = tuple(Rule.from_spec(rule) for rule in rules or ())
    except TextClassConfigurationError as exc:
        raise RegistrationError(f"{label}: {exc}", "textclass.E025") from exc
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise RegistrationError(f"{label}: two rules have the same name", "textclass.E025")
    return Registration(
        model=model,
        fields=tuple(fields),
        models=models,
        condition=condition,
        long_text=long_text,
        rules=rules,
        backend=backend,
        function_to_apply=function_to_apply,
        top_k=top_k,
        date_field=date_field,
        origin=origin,
    )


def from_settings(label, spec):
    """Build a :class:`Registration` from one ``TEXTCLASS["REGISTRY"]`` entry.

    Raises:
        RegistrationError: unknown model, unknown keys, or a wrong value.
    """
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise RegistrationError(
            f"TEXTCLASS['REGISTRY'][{label!r}]: no such installed model", "textclass.E020"
        ) from exc
    if not isinstance(spec, dict):
        raise RegistrationError(
            f"TEXTCLASS['REGISTRY'][{label!r}] must be a dict", "textclass.E026"
        )
    unknown = sorted(set(spec) - SETTINGS_KEYS)
    if unknown:
        raise RegistrationError(
            f"TEXTCLASS['REGISTRY'][{label!r}] has unknown keys: {', '.join(unknown)}",
            "textclass.E026",
        )
    return build(
        model,
        spec.get("FIELDS"),
        spec.get("MODELS"),
        condition=spec.get("CONDITION"),
        long_text=spec.get("LONG_TEXT"),
        rules=spec.get("RULES") or (),
        backend=spec.get("BACKEND"),
        function_to_apply=spec.get("FUNCTION_TO_APPLY"),
        top_k=spec.get("TOP_K"),
        date_field=spec.get("DATE_FIELD"),
        origin="settings",
    )
