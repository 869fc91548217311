"""A project that mounts the REST API two levels down, under an instance namespace."""

from django.urls import include, path

urlpatterns = [
    path(
        "v1/",
        include(
            [
                path("text/", include("django_textclass.api.urls", namespace="text-v1")),
            ]
        ),
    ),
]
