"""URLs of the example project: the admin, and (soon) the REST API."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    # The REST API, once django_textclass.api exists:
    # path("api/", include("django_textclass.api.urls")),  (and import `include` above)
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
