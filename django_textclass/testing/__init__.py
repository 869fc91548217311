"""Helpers for testing code that uses django_textclass, with no Django models imported.

``InferenceAPIEmulator`` is a loopback HTTP server that speaks the Hugging Face
Inference API text-classification contract; ``Reply`` scripts its failures;
``TEIMode`` turns on its TEI routes.
They are re-exported lazily so that ``python -m django_textclass.testing.emulator``
does not import its own module twice.
"""

__all__ = ["InferenceAPIEmulator", "ReceivedRequest", "Reply", "TEIMode"]


def __getattr__(name):
    if name in __all__:
        from django_textclass.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
