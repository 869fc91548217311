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

from django.apps import apps
from django.core import checks
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_save
from django.utils.module_loading import import_string

from django_textclass import signals
from django_textclass.conf import app_settings
from django_textclass.content import rules, sync
from django_textclass.content.registration import (  # noqa: F401  (re-exported: their old home)
    SETTINGS_KEYS,
    Registration,
    build,
    from_settings,
)
from django_textclass.exceptions import RegistrationError  # re-exported, its old home

logger = logging.getLogger("django_textclass.registry")


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
            raise RegistrationError(f"{registration.label} is already registered", "textclass.E027")
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
            return [
                checks.Error(
                    "TEXTCLASS['REGISTRY'] must be a dict of 'app_label.Model' -> options.",
                    id="textclass.E026",
                )
            ]
        registrations = list(self._code.values())
        for label, spec in entries.items():
            try:
                registration = from_settings(label, spec)
            except RegistrationError as exc:
                messages.append(checks.Error(str(exc), id=exc.check_id))
                continue
            if registration.model in self._code:
                messages.append(
                    checks.Error(
                        f"{label} is registered both in code and in TEXTCLASS['REGISTRY'].",
                        id="textclass.E027",
                    )
                )
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
            messages.append(
                checks.Error(
                    f"{label}: the action of rule {rule.name!r} cannot be imported: {exc}",
                    id="textclass.E028",
                )
            )
    if isinstance(registration.condition, str):
        try:
            import_string(registration.condition)
        except ImportError as exc:
            messages.append(
                checks.Error(
                    f"{label}: CONDITION {registration.condition!r} cannot be imported: {exc}",
                    id="textclass.E023",
                )
            )
    alias = registration.backend
    if alias is not None and alias not in app_settings.BACKENDS:
        messages.append(
            checks.Error(
                f"{label}: backend {alias!r} is not an alias in TEXTCLASS['BACKENDS'].",
                id="textclass.E029",
            )
        )
    for rule in registration.rules:
        if rule.model is not None and rule.model not in registration.model_ids:
            messages.append(
                checks.Warning(
                    f"{label}: rule {rule.name!r} watches model {rule.model!r}, which the "
                    "registration does not classify with; it never fires.",
                    id="textclass.W020",
                )
            )
        if rule.field is not None and rule.field not in registration.fields:
            messages.append(
                checks.Warning(
                    f"{label}: rule {rule.name!r} watches field {rule.field!r}, which is not "
                    "registered; it never fires.",
                    id="textclass.W020",
                )
            )
    return messages


# --- receivers ----------------------------------------------------------------------------
# Connected per registered model (``sender=Model``), never for every model. Both run inside
# the transaction of the save or delete, so a rollback undoes what they did; the work
# itself is in :mod:`django_textclass.content.sync`.


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
    sync.classify_object(instance, registration, created=created)


def on_delete(sender, instance, **kwargs):
    """Cancel the pending work of a deleted object (and delete its history if asked)."""
    if site.get(sender) is None:
        return
    sync.forget_object(sender, instance.pk)


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
    post_delete.connect(on_delete, sender=model, weak=False, dispatch_uid=_uid("delete", model))


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
