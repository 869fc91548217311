"""The old home of :mod:`django_textclass.services.dispatch`, kept for imports that name it.

It is the same module object, not a copy, so ``monkeypatch.setattr(dispatch, "send", ...)``
on either name replaces the one function the services call.
"""

import sys

from django_textclass.services import dispatch

sys.modules[__name__] = dispatch
