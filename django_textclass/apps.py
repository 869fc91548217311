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
        """Register the system checks; load ``TEXTCLASS["REGISTRY"]`` (connects receivers)."""
        from django_textclass import checks  # noqa: F401  (registers the checks)
        from django_textclass.registry import site

        site.load_settings()
