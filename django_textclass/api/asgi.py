"""An ASGI application for sites that serve the waiting endpoints (``proj/asgi.py``).

Django's ASGI handler gives every request a thread of its own for the request's synchronous
steps (its signals, synchronous middleware, views), kept until the response is sent. For a
request that waits for a worker, that is one idle thread per waiting client: 32 clients, 32
threads. :func:`get_asgi_application` returns Django's handler with one change: requests to
the views that wait (marked ``textclass_waits``, the drop-in endpoint) share the process's
thread for Django's own synchronous steps, and run their own steps in the event loop's thread
pool, so however many clients wait, the threads stay few. Every other request is served
exactly as Django serves it.

    # proj/asgi.py
    from django_textclass.api.asgi import get_asgi_application

    application = get_asgi_application()
"""

import django
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.handlers.asgi import get_script_prefix
from django.urls import Resolver404, resolve

__all__ = ["ASGIHandler", "get_asgi_application"]


class ASGIHandler(DjangoASGIHandler):
    """Django's ASGI handler; requests to a waiting view get no thread of their own."""

    async def __call__(self, scope, receive, send):
        """Serve a waiting view's request without Django's per-request thread context."""
        if scope["type"] == "http" and waits(scope):
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def waits(scope):
    """Whether the request of ``scope`` goes to a view that waits for a worker."""
    path = scope["path"].removeprefix(get_script_prefix(scope)) or "/"
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return getattr(match.func, "textclass_waits", False)


def get_asgi_application():
    """:func:`django.core.asgi.get_asgi_application`, serving with :class:`ASGIHandler`."""
    django.setup(set_prefix=False)
    return ASGIHandler()
