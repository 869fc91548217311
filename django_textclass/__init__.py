"""Background text classification for Django through the Hugging Face Inference API.

The public entry point is :func:`classify`. It is imported lazily so that importing
this package never imports Django models (which would fail before apps are ready).
"""

__version__ = "0.1.0"

__all__ = ["__version__", "classify", "register", "unregister"]


def classify(texts, model=None, **kwargs):
    """Store classification requests and have a Celery worker classify them.

    A thin alias of :func:`django_textclass.services.submit`; see there for the
    arguments. Returns one request for a single string, a list for a list.
    """
    from django_textclass.services import submit

    return submit(texts, model=model, **kwargs)


def register(model, fields, models=None, **options):
    """Classify ``fields`` of ``model`` in the background whenever their text changes.

    A thin alias of :meth:`django_textclass.content.registry.Registry.register` on the
    default registry; see there (and docs/content.md) for the options.
    """
    from django_textclass.content.registry import site

    return site.register(model, fields, models, **options)


def unregister(model):
    """Stop classifying ``model`` (registered with :func:`register`)."""
    from django_textclass.content.registry import site

    return site.unregister(model)
