"""System checks of the health settings: ``textclass.E030`` and ``textclass.E031``.

* ``textclass.E030``: ``HEALTH_THRESHOLDS`` has an unknown key or a value that is not a
  number of 0 or more (``None`` where a threshold may be off).
* ``textclass.E031``: ``HEALTH_TOKEN`` is neither ``None`` nor a non-empty string.
"""

from django.core import checks

from django_textclass.conf import app_settings
from django_textclass.exceptions import TextClassConfigurationError
from django_textclass.health.parts import thresholds


@checks.register()
def check_health_settings(app_configs=None, **kwargs):
    """Check ``HEALTH_THRESHOLDS`` and ``HEALTH_TOKEN``."""
    errors = []
    try:
        thresholds()
    except TextClassConfigurationError as exc:
        errors.append(
            checks.Error(
                str(exc), id="textclass.E030", hint="See docs/operations.md#alert-thresholds."
            )
        )
    token = app_settings.HEALTH_TOKEN
    if token is not None and not (isinstance(token, str) and token.strip()):
        errors.append(
            checks.Error(
                "TEXTCLASS['HEALTH_TOKEN'] must be None or a non-empty string.",
                id="textclass.E031",
                hint="Generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'",
            )
        )
    return errors
