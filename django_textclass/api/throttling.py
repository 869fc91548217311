"""Per-user rate limit of the endpoints that submit texts."""

from django.core.cache import caches
from rest_framework.throttling import UserRateThrottle

from django_textclass.conf import app_settings


class SubmitRateThrottle(UserRateThrottle):
    """At most ``TEXTCLASS["API_THROTTLE_RATE"]`` submissions per user (per IP if anonymous).

    Counts ``POST /classifications/``, retries and drop-in calls, the calls that
    cost a backend request. The counters live in the cache alias
    ``API_THROTTLE_CACHE``: it must be shared by every web process (Redis,
    Memcached, the database or file cache), or each process counts on its own
    (system check ``textclass.W010``). A rate of None turns the limit off.
    """

    scope = "textclass_submit"

    @property
    def cache(self):
        """The shared cache named by ``API_THROTTLE_CACHE`` (read at each request)."""
        return caches[app_settings.API_THROTTLE_CACHE]

    def get_rate(self):
        """``API_THROTTLE_RATE``, e.g. ``"60/minute"``; None disables throttling."""
        return app_settings.API_THROTTLE_RATE
