"""URLs of the example project: the admin, the REST API and its documentation, the health view."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    # The REST API; its OpenAPI schema is /api/schema/ (name "textclass_api:schema").
    path("api/", include("django_textclass.api.urls")),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="textclass_api:schema"),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="textclass_api:schema"),
        name="api-redoc",
    ),
    # The pipeline's health for monitors (staff, or TEXTCLASS["HEALTH_TOKEN"] as a Bearer).
    path("textclass/", include("django_textclass.health.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
