"""The REST API of django-textclass (Django REST framework).

Mount it with ``path("api/", include("django_textclass.api.urls"))``. It offers:

* ``/classifications/``: submit texts, read one request, list the caller's history,
  retry and cancel (:mod:`django_textclass.api.views`);
* ``/stats/``: the label-distribution aggregates the admin dashboard shows;
* ``/models/{model_id}``: the Hugging Face Inference API's own wire format, so
  clients written for the API work against the site
  (:mod:`django_textclass.api.inference`);
* ``/schema/``: the OpenAPI 3 document (drf-spectacular).

Every endpoint is described in ``docs/api.md``.
"""
