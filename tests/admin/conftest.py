"""Fixtures of the admin tests: a known history, and users with and without rights."""

import pytest
from django.contrib.auth.models import Permission

from tests.admin.data import seed_known_history


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("olivia")


@pytest.fixture
def history(db, owner):
    """The known data set of ``tests.admin.data``; the finished rows belong to ``owner``."""
    return seed_known_history(owner=owner)


@pytest.fixture
def viewer_client(client, django_user_model):
    """A staff user who may view requests but not change them (so: no actions)."""
    user = django_user_model.objects.create_user("vera", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_classificationrequest"))
    client.force_login(user)
    return client
