"""URLs of the REST API: ``path("api/", include("django_textclass.api.urls"))``.

Names are in the ``textclass_api`` namespace (``textclass_api:classification-detail``).
The views that wait for the worker opt out of ``ATOMIC_REQUESTS``: inside a request
transaction the stored texts would not be committed (nor the worker woken) until
the response is sent, so waiting could never succeed.
"""

from django.db import transaction
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from django_textclass.api.inference import as_async_view
from django_textclass.api.statistics import StatsView
from django_textclass.api.views import ClassificationViewSet

app_name = "textclass_api"


def _viewset(actions):
    return ClassificationViewSet.as_view(actions)


urlpatterns = [
    path(
        "classifications/",
        transaction.non_atomic_requests(_viewset({"get": "list", "post": "create"})),
        name="classification-list",
    ),
    path(
        "classifications/<str:id>/",
        _viewset({"get": "retrieve"}),
        name="classification-detail",
    ),
    path(
        "classifications/<str:id>/retry/",
        _viewset({"post": "retry"}),
        name="classification-retry",
    ),
    path(
        "classifications/<str:id>/cancel/",
        _viewset({"post": "cancel"}),
        name="classification-cancel",
    ),
    path("stats/", StatsView.as_view(), name="stats"),
    # A Hub id has a slash ("owner/name"). Anything at all matches here (newlines too),
    # so a bad id gets the view's 400 in the API's {"error": ...} shape, not an HTML 404.
    re_path(
        r"^models/(?P<model_id>(?s:.+))$",
        transaction.non_atomic_requests(as_async_view()),
        name="inference",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]
