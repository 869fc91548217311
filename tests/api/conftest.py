"""Fixtures of the REST API tests: authenticated clients (the users are the suite's)."""

import pytest

from tests.api.helpers import client_for


@pytest.fixture
def api(alice):
    """Alice's client."""
    return client_for(alice)


@pytest.fixture
def bob_api(bob):
    return client_for(bob)


@pytest.fixture
def staff_api(staff):
    return client_for(staff)
