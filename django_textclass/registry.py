"""Which of a project's models are classified in the background, and how.

In the spirit of ``admin.site.register``: one module-level registry, :data:`site`,
filled from code (``django_textclass.register(...)``, typically in an
``AppConfig.ready()``) and from the ``TEXTCLASS["REGISTRY"]`` setting::

    TEXTCLASS = {"REGISTRY": {
        "blog.Comment": {
            "FIELDS": ["title", "body"],
            "MODELS": ["distilbert/distilbert-base-uncased-finetuned-sst-2-english"],
            "CONDITION": "blog.textclass.is_public",      # optional
            "LONG_TEXT": {"POLICY": "split", "MAX_LENGTH": 2000},   # optional
            "RULES": [{"LABEL": "NEGATIVE", "MIN_SCORE": 0.98,
                       "ACTION": "blog.textclass.hide"}],           # optional
        },
    }}

Registering a model connects ``post_save`` / ``post_delete`` receivers for that
model only (a receiver for every model would turn off Django's fast deletes
everywhere). Settings registrations are re-read when ``TEXTCLASS`` changes.
"""

import logging
from dataclasses import dataclass

from django.apps import apps
from django.core import checks
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_save
from django.utils.module_loading import import_string

from django_textclass import rules, signals
from django_textclass.conf import app_settings
from django_textclass.exceptions import (  # RegistrationError: re-exported, its old home
    InvalidInputError,
    RegistrationError,
    TextClassConfigurationError,
)
from django_textclass.rules import Rule
from django_textclass.types import validate_model_id

logger = logging.getLogger("django_textclass.registry")

SETTINGS_KEYS = {
    "FIELDS", "MODELS", "CONDITION", "LONG_TEXT", "RULES", "BACKEND", "FUNCTION_TO_APPLY",
    "TOP_K", "DATE_FIELD",
}


@dataclass(frozen=True)
class Registration:
    """How one model's instances are classified. Built by :meth:`Registry.register`.

    Attributes:
        model: the model class.
        fields: names of the attributes holding text (fields or properties).
        models: Hub model ids, or None for ``TEXTCLASS["DEFAULT_MODEL"]``.
        condition: None, a callable ``condition(obj) -> bool``, or its dotted path;
            an object for which it is false is not classified on save.
        long_text: a long-text policy spec, or None for ``LONG_TEXT_POLICY``.
        rules: threshold :class:`~django_textclass.rules.Rule` objects.
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
        """The Hub model ids, the default model read now when none was given."""
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
        return {"backend": self.backend, "function_to_apply": self.function_to_apply,
                "top_k": self.top_k}


def build(model, fields, models=None, *, condition=None, long_text=None, rules=(),
          backend=None, function_to_apply=None, top_k=None, date_field=None, origin="code"):
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
        raise RegistrationError(f"{label}: fields must be a non-empty list of names",
                                "textclass.E021")
    for name in fields:
        if not hasattr(model, name):
            raise RegistrationError(f"{label}: {name!r} is not a field or attribute of the model",
                                    "textclass.E021")
    if date_field is not None and not hasattr(model, date_field):
        raise RegistrationError(f"{label}: date_field {date_field!r} is not a field",
                                "textclass.E021")
    if models is not None:
        if isinstance(models, str) or not models:
            raise RegistrationError(f"{label}: models must be a non-empty list of Hub ids",
                                    "textclass.E022")
        for model_id in models:
            try:
                validate_model_id(model_id)
            except InvalidInputError as exc:
                raise RegistrationError(f"{label}: {exc}", "textclass.E022") from exc
        models = tuple(models)
    if condition is not None and not callable(condition) and not isinstance(condition, str):
        raise RegistrationError(f"{label}: condition must be a callable or its dotted path",
                                "textclass.E023")
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
        model=model, fields=tuple(fields), models=models, condition=condition,
        long_text=long_text, rules=rules, backend=backend, function_to_apply=function_to_apply,
        top_k=top_k, date_field=date_field, origin=origin,
    )


def from_settings(label, spec):
    """Build a :class:`Registration` from one ``TEXTCLASS["REGISTRY"]`` entry.

    Raises:
        RegistrationError: unknown model, unknown keys, or a wrong value.
    """
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise RegistrationError(f"TEXTCLASS['REGISTRY'][{label!r}]: no such installed model",
                                "textclass.E020") from exc
    if not isinstance(spec, dict):
        raise RegistrationError(f"TEXTCLASS['REGISTRY'][{label!r}] must be a dict",
                                "textclass.E026")
    unknown = sorted(set(spec) - SETTINGS_KEYS)
    if unknown:
        raise RegistrationError(
            f"TEXTCLASS['REGISTRY'][{label!r}] has unknown keys: {', '.join(unknown)}",
            "textclass.E026",
        )
    return build(
        model, spec.get("FIELDS"), spec.get("MODELS"), condition=spec.get("CONDITION"),
        long_text=spec.get("LONG_TEXT"), rules=spec.get("RULES") or (),
        backend=spec.get("BACKEND"), function_to_apply=spec.get("FUNCTION_TO_APPLY"),
        top_k=spec.get("TOP_K"), date_field=spec.get("DATE_FIELD"), origin="settings",
    )


class Registry:
    """Registrations by model class, from code and from settings."""

    def __init__(self):
        self._code = {}
        self._settings = {}

    # --- registering --------------------------------------------------------------

    def register(self, model, fields, models=None, **options):
        """Classify ``fields`` of ``model`` with ``models`` whenever their text changes.

        Args:
            model: the model class.
            fields: attribute names holding text, e.g. ``["title", "body"]``.
            models: Hub model ids; None means ``TEXTCLASS["DEFAULT_MODEL"]``.
            **options: ``condition``, ``long_text``, ``rules``, ``backend``,
                ``function_to_apply``, ``top_k``, ``date_field`` (see
                :class:`Registration`).

        Returns:
            The :class:`Registration`.

        Raises:
            RegistrationError: an argument is wrong, or the model is already
                registered (in code or in settings).
        """
        registration = build(model, fields, models, **options)
        if model in self._code or model in self._settings:
            raise RegistrationError(f"{registration.label} is already registered",
                                    "textclass.E027")
        self._code[model] = registration
        _connect(model)
        _sync_rules_receiver()
        return registration

    def unregister(self, model):
        """Stop classifying ``model`` (registered in code). Returns whether it was."""
        if self._code.pop(model, None) is None:
            return False
        if model not in self._settings:
            _disconnect(model)
        _sync_rules_receiver()
        return True

    def load_settings(self):
        """(Re)read ``TEXTCLASS["REGISTRY"]`` and connect the receivers of its models.

        Invalid entries are logged and skipped (the system checks report them).
        """
        for model in self._settings:
            if model not in self._code:
                _disconnect(model)
        self._settings = {}
        entries = app_settings.read("REGISTRY")  # never a stale cached value
        if not isinstance(entries, dict):
            _sync_rules_receiver()
            return
        for label, spec in entries.items():
            try:
                registration = from_settings(label, spec)
            except RegistrationError as exc:
                logger.error("Ignoring a TEXTCLASS registration: %s", exc)
                continue
            if registration.model in self._code:
                logger.error("Ignoring TEXTCLASS['REGISTRY'][%r]: registered in code too", label)
                continue
            self._settings[registration.model] = registration
            _connect(registration.model)
        _sync_rules_receiver()

    # --- reading --------------------------------------------------------------------

    def get(self, model):
        """The registration of ``model`` (or of its concrete model), or None."""
        registration = self._code.get(model) or self._settings.get(model)
        if registration is None and model._meta.proxy:
            concrete = model._meta.concrete_model
            registration = self._code.get(concrete) or self._settings.get(concrete)
        return registration

    def for_content_type(self, content_type):
        """The registration for a content type (None if unregistered or unknown)."""
        model = content_type.model_class() if content_type is not None else None
        return self.get(model) if model is not None else None

    def __iter__(self):
        return iter([*self._code.values(), *self._settings.values()])

    def __contains__(self, model):
        return self.get(model) is not None

    # --- checks ------------------------------------------------------------------------

    def check(self):
        """System check messages for every registration (ids E020-E029)."""
        messages = []
        entries = app_settings.REGISTRY
        if not isinstance(entries, dict):
            return [checks.Error("TEXTCLASS['REGISTRY'] must be a dict of "
                                 "'app_label.Model' -> options.", id="textclass.E026")]
        registrations = list(self._code.values())
        for label, spec in entries.items():
            try:
                registration = from_settings(label, spec)
            except RegistrationError as exc:
                messages.append(checks.Error(str(exc), id=exc.check_id))
                continue
            if registration.model in self._code:
                messages.append(checks.Error(
                    f"{label} is registered both in code and in TEXTCLASS['REGISTRY'].",
                    id="textclass.E027"))
                continue
            registrations.append(registration)
        for registration in registrations:
            messages.extend(_check_registration(registration))
        return messages


def _check_registration(registration):
    messages = []
    label = registration.label
    for rule in registration.rules:
        try:
            rule.get_action()
        except ImportError as exc:
            messages.append(checks.Error(
                f"{label}: the action of rule {rule.name!r} cannot be imported: {exc}",
                id="textclass.E028"))
    if isinstance(registration.condition, str):
        try:
            import_string(registration.condition)
        except ImportError as exc:
            messages.append(checks.Error(
                f"{label}: CONDITION {registration.condition!r} cannot be imported: {exc}",
                id="textclass.E023"))
    alias = registration.backend
    if alias is not None and alias not in app_settings.BACKENDS:
        messages.append(checks.Error(
            f"{label}: backend {alias!r} is not an alias in TEXTCLASS['BACKENDS'].",
            id="textclass.E029"))
    for rule in registration.rules:
        if rule.model is not None and rule.model not in registration.model_ids:
            messages.append(checks.Warning(
                f"{label}: rule {rule.name!r} watches model {rule.model!r}, which the "
                "registration does not classify with; it never fires.", id="textclass.W020"))
        if rule.field is not None and rule.field not in registration.fields:
            messages.append(checks.Warning(
                f"{label}: rule {rule.name!r} watches field {rule.field!r}, which is not "
                "registered; it never fires.", id="textclass.W020"))
    return messages


# --- receivers ----------------------------------------------------------------------------
# Connected per registered model (``sender=Model``), never for every model. Both run inside
# the transaction of the save or delete, so a rollback undoes what they did; the work
# itself is in :mod:`django_textclass.content`.


def on_save(sender, instance, created=False, raw=False, update_fields=None, **kwargs):
    """Classify the registered fields of ``instance`` whose text changed.

    Fixture loading (``raw``) is skipped, and so is a ``save(update_fields=...)``
    that touches none of the registered fields (no query at all).
    """
    if raw:
        return
    registration = site.get(sender)
    if registration is None:
        return
    fields = set(registration.fields)
    concrete = {field.name for field in sender._meta.concrete_fields}
    # A registered property may read any field, so only plain fields allow the shortcut.
    if update_fields is not None and fields <= concrete and not fields & set(update_fields):
        return
    from django_textclass.content import classify_object

    classify_object(instance, registration, created=created)


def on_delete(sender, instance, **kwargs):
    """Cancel the pending work of a deleted object (and delete its history if asked)."""
    if site.get(sender) is None:
        return
    from django_textclass.content import forget_object

    forget_object(sender, instance.pk)


def run_rules(sender, *, request, source, **kwargs):
    """``classification_succeeded`` receiver: fire the threshold rules of the request's source.

    Connected only while some registration has rules, so results from a site without
    rules are not even loaded for it.
    """
    registration = site.for_content_type(request.content_type)
    if registration is None or not registration.rules:
        return
    if source is None:
        logger.info("Rules skipped for request %s: its source is gone", request.uuid)
        return
    rules.run_rules(registration, request, source)


RULES_UID = "django_textclass.rules"


def _sync_rules_receiver():
    if any(registration.rules for registration in site):
        signals.classification_succeeded.connect(run_rules, weak=False, dispatch_uid=RULES_UID)
    else:
        signals.classification_succeeded.disconnect(dispatch_uid=RULES_UID)


def _uid(kind, model):
    return f"django_textclass.{kind}.{model._meta.label_lower}"


def _connect(model):
    post_save.connect(on_save, sender=model, weak=False, dispatch_uid=_uid("save", model))
    post_delete.connect(on_delete, sender=model, weak=False,
                        dispatch_uid=_uid("delete", model))


def _disconnect(model):
    post_save.disconnect(sender=model, dispatch_uid=_uid("save", model))
    post_delete.disconnect(sender=model, dispatch_uid=_uid("delete", model))


#: The default registry; ``django_textclass.register`` adds to it.
site = Registry()


@checks.register()
def check_registry(app_configs=None, **kwargs):
    """Check every registration of background classification (E020-E029, W020)."""
    return site.check()


def _reload(*, setting, **kwargs):
    # load_settings() reads the setting itself, so this works whether or not conf's own
    # receiver has already dropped its cache.
    if setting == "TEXTCLASS" and apps.ready:
        site.load_settings()


setting_changed.connect(_reload)
