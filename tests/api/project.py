"""Classes a project would write itself, named in its REST_FRAMEWORK / TEXTCLASS settings."""

from drf_spectacular.openapi import AutoSchema
from rest_framework.throttling import UserRateThrottle


class OwnSchema(AutoSchema):
    """Derived from drf-spectacular's: check E015 accepts it."""


class TwoPerMinute(UserRateThrottle):
    """A project-wide throttle. DRF reads ``DEFAULT_THROTTLE_RATES`` once, at import, so the
    rate is on the class for settings changed by a test."""

    rate = "2/minute"
