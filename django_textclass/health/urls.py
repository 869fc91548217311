"""URLs of the health view: ``path("textclass/", include("django_textclass.health.urls"))``.

That mounts ``GET textclass/health/``, named ``textclass_health:health``.
"""

from django.urls import path

from django_textclass.health.views import health

app_name = "textclass_health"

urlpatterns = [path("health/", health, name="health")]
