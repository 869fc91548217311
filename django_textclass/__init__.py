"""Background text classification for Django through the Hugging Face Inference API.

The public entry point is :func:`classify`. It is imported lazily so that importing
this package never imports Django models (which would fail before apps are ready).
"""

__version__ = "0.1.0"

__all__ = ["__version__", "classify"]


def classify(texts, model=None, **kwargs):
    """Store classification requests and have a Celery worker classify them.

    A thin alias of :func:`django_textclass.services.submit`; see there for the
    arguments. Returns one request for a single string, a list for a list.
    """
    from django_textclass.services import submit

    return submit(texts, model=model, **kwargs)
