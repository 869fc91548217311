"""The API mounted under another prefix, beside another endpoint; a project's schema class."""

from django.urls import include, path
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view


@extend_schema(responses={204: None})
@api_view(["GET"])
def health(request):  # the site's own endpoint: the paths' common prefix is now "/"
    """Site health."""


urlpatterns = [
    path("somewhere/else/api/", include("django_textclass.api.urls")),
    path("health/", health),
]


class SiteSchema(AutoSchema):
    """A project's own schema class (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"])."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation:
            operation["x-site-schema"] = True
        return operation
