"""The test settings served as ASGI (``uvicorn tests.asgi:application``), as a site serves the
waiting endpoints: the drop-in endpoint's wait holds no thread, in the integration tests and
the benchmark."""

import tests.celery_app  # noqa: F401 - the site's Celery app, as a project's __init__ imports it
from django_textclass.api.asgi import get_asgi_application

application = get_asgi_application()
