from django.contrib import admin
from django.urls import include, path
from health_check.views import HealthCheckView
from rest_framework.routers import SimpleRouter

from django_textclass.health.plugin import CHECKS
from tests.testapp.bare import BareSubmissionViewSet

# The benchmark's baseline (benchmarks/pipeline.py): a stock ModelViewSet create.
bare = SimpleRouter()
bare.register("submissions", BareSubmissionViewSet, basename="bare-submission")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("django_textclass.api.urls")),
    path("bare/", include(bare.urls)),
    path("textclass/", include("django_textclass.health.urls")),
    # django-health-check's own view with the app's checks (docs/operations.md).
    path("ht/", HealthCheckView.as_view(checks=["health_check.checks.Database", *CHECKS])),
]
