"""The health report as JSON, for staff members and for monitors holding the token.

Mounted by its own include (``django_textclass.health.urls``), not by the REST API's: a probe
must work on a site that does not serve the API, and the API's permission classes (which a site
may open to anonymous clients) must never decide who reads the pipeline's internals.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.http import JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from django_textclass.conf import app_settings
from django_textclass.health.parts import report

#: HTTP status of each level: a monitor that reads only the status code alerts on critical.
STATUS_CODES = {"ok": 200, "warning": 200, "critical": 503}
DENIED = (
    "The health report is for staff members, or for a monitor that sends "
    "Authorization: Bearer <TEXTCLASS['HEALTH_TOKEN']>."
)


def allowed(request):
    """Whether the caller may read the report: an active staff user, or the right token.

    The token is compared in constant time, and only from the ``Authorization`` header (a
    query string would end up in access logs).
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active and user.is_staff:
        return True
    token = app_settings.HEALTH_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(token) and scheme.lower() == "bearer" and constant_time_compare(given.strip(), token)
    )


@never_cache
@require_safe
def health(request):
    """``GET``: the report, with 200 (ok, warning) or 503 (critical); 403 for anyone else."""
    if not allowed(request):
        return JsonResponse({"error": DENIED}, status=403)
    data = report()
    return JsonResponse(
        data, status=STATUS_CODES.get(data["status"], 503), encoder=DjangoJSONEncoder
    )
