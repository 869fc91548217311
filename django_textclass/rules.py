"""The old home of :mod:`django_textclass.content.rules` (``django_textclass.rules.Rule``).

The same module object, not a copy.
"""

import sys

from django_textclass.content import rules

sys.modules[__name__] = rules
