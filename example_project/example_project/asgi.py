"""The example project served as ASGI: ``uvicorn example_project.asgi:application``.

Django's ASGI application, except that requests to the waiting endpoints (the drop-in
``POST /api/models/{model_id}``) do not get a thread each while they wait.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

from django_textclass.api.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
