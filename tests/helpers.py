"""Helpers any test may import (test modules never import each other or a conftest)."""

import os
import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout=20.0, interval=0.05, message="condition", describe=None):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``.

    ``describe``, when given, is called on failure and its text ends the failure message
    (the state that did not come, for the log of a run nobody can repeat).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            details = f"\n{describe()}" if describe is not None else ""
            pytest.fail(f"timed out after {timeout} s waiting for {message}{details}")
        time.sleep(interval)


def missing(reason):
    """A tool a test needs is not installed: skip on a user's machine, fail with CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI=true requires this test to run.")
    pytest.skip(reason)


def free_port():
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
