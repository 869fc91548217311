"""URLs of the REST API: ``path("api/", include("django_textclass.api.urls"))``.

A DRF router serves the classifications and the API root (``/api/``, a link to each
endpoint); the statistics, the drop-in Inference API endpoint and the schema are plain
paths beside it. Names are in the ``textclass_api`` namespace
(``textclass_api:classification-detail``, ``textclass_api:api-root``).

The views that wait for the worker opt out of ``ATOMIC_REQUESTS``: inside a request
transaction the stored texts would not be committed (nor the worker woken) until
the response is sent, so waiting could never succeed.
"""

from django.db import transaction
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework import routers

from django_textclass.api.inference import as_async_view
from django_textclass.api.statistics import StatsView
from django_textclass.api.views import APIRootView, ClassificationViewSet

app_name = "textclass_api"


class Router(routers.DefaultRouter):
    """DRF's default router, with the API's own root view and no format suffixes.

    The root lists the endpoints that take no argument, not only the registered viewsets.
    Without suffixes every URL stays as documented: a request id may hold a dot, and a
    ``.json`` ending is not a second spelling of each URL.
    """

    APIRootView = APIRootView
    include_format_suffixes = False

    def get_api_root_view(self, api_urls=None):
        """The root view, linking the viewsets and the plain endpoints alike."""
        links = {prefix: f"{basename}-list" for prefix, _, basename in self.registry}
        links.update(stats="stats", schema="schema")
        return self.APIRootView.as_view(api_root_dict=links)


router = Router()
router.register("classifications", ClassificationViewSet, basename="classification")

urlpatterns = [
    *router.urls,
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
