"""The old home of :mod:`django_textclass.content.registry`, kept for imports that name it.

The same module object, not a copy: ``django_textclass.registry.site`` is the one registry.
"""

import sys

from django_textclass.content import registry

sys.modules[__name__] = registry
