from django.contrib import admin
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from tests.testapp.bare import BareSubmissionViewSet

# The benchmark's baseline (benchmarks/pipeline.py): a stock ModelViewSet create.
bare = SimpleRouter()
bare.register("submissions", BareSubmissionViewSet, basename="bare-submission")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("django_textclass.api.urls")),
    path("bare/", include(bare.urls)),
]
