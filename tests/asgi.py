"""The test settings served as ASGI (``uvicorn tests.asgi:application``): the drop-in
endpoint's wait without a thread, in the integration tests and the benchmark."""

from django.core.asgi import get_asgi_application

import tests.celery_app  # noqa: F401 - the site's Celery app, as a project's __init__ imports it

application = get_asgi_application()
