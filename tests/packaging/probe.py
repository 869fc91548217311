"""Not collected on its own (no ``test_`` prefix): run by path, it says where the package under
test comes from (the unpacked sdist's own copy, in test_distributions.py)."""

import django_textclass


def test_where_the_package_comes_from():
    print(f"\ndjango_textclass from {django_textclass.__file__.rsplit('/django_textclass', 1)[0]}")
    assert django_textclass.__file__
