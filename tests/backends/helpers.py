"""Builders for the backend unit tests: real ``requests.Response`` objects and a fake ``post``.

The only thing the unit tests replace is the backend session's ``post`` method (the one
HTTP seam); everything after it (status mapping, JSON decoding, parsing) runs for real.
"""

import json as jsonlib
import socket

import requests
from requests.structures import CaseInsensitiveDict

TOKEN = "hf_fake_unit_test_token_0123456789abcdef"  # noqa: S105 - a fake token for the tests
MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
ROUTER_URL = "https://router.huggingface.co/hf-inference/models/{model_id}"


def make_response(status, json=None, text=None, headers=None, url=None):
    """A real ``requests.Response`` with ``status``, a body and headers.

    Args:
        status: the HTTP status code.
        json: a value encoded as the JSON body (sets ``Content-Type: application/json``).
        text: a raw body, used as is (for plain text, HTML or invalid JSON).
        headers: extra response headers.
        url: the response URL; the fake ``post`` fills in the requested URL when None.
    """
    response = requests.Response()
    response.status_code = status
    response.encoding = "utf-8"
    response.headers = CaseInsensitiveDict()
    if json is not None:
        response._content = jsonlib.dumps(json).encode("utf-8")
        response.headers["Content-Type"] = "application/json"
    elif text is not None:
        response._content = text.encode("utf-8")
        response.headers["Content-Type"] = "text/plain; charset=utf-8"
    else:
        response._content = b""
    response.headers.update(headers or {})
    response.url = url
    return response


class FakePost:
    """Stands in for ``Session.post``: records each call, returns (or raises) ``result``."""

    def __init__(self, result):
        self.result = result
        self.calls = []

    def __call__(self, url, **kwargs):
        self.calls.append({"url": url, **kwargs})
        if isinstance(self.result, BaseException):
            raise self.result
        if self.result.url is None:
            self.result.url = url
        return self.result

    @property
    def call(self):
        """The one recorded call (fails if there was not exactly one)."""
        assert len(self.calls) == 1, f"expected one POST, got {len(self.calls)}"
        return self.calls[0]


def install_post(monkeypatch, backend, result):
    """Replace ``backend.session.post`` with a :class:`FakePost` returning ``result``."""
    fake = FakePost(result)
    monkeypatch.setattr(backend.session, "post", fake)
    return fake


def block_network(monkeypatch):
    """Make any socket connection or DNS lookup fail the test loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("a unit test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
