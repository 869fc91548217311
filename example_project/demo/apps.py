from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo app: only the ``rundemo`` management command."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "django-textclass demo"
