from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TextClassConfig(AppConfig):
    """App configuration: pins the auto field and registers the system checks."""

    name = "django_textclass"
    label = "django_textclass"
    verbose_name = _("Text classification")
    # Pinned so a project's DEFAULT_AUTO_FIELD never produces a migration here.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        """Register the system checks; load ``TEXTCLASS["REGISTRY"]`` (connects receivers).

        The app config is the one place that wires the features to the core: importing
        ``checks`` (core), ``api.checks``, ``health.checks`` and ``registry`` registers their
        system checks, and the registry connects its own receivers.
        """
        from django_textclass import checks  # noqa: F401  (registers the core checks)
        from django_textclass.api import checks as api_checks  # noqa: F401  (the API's)
        from django_textclass.content.registry import site
        from django_textclass.health import checks as health_checks  # noqa: F401  (its own)

        site.load_settings()
