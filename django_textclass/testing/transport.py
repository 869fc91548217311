"""The HTTP side of the emulator: a threaded server on loopback and its request handler.

The handler reads a request, hands it to the :class:`~django_textclass.testing.emulator.\
InferenceAPIEmulator` the server serves (its control routes, the TEI routes, the model route),
logs it there, and writes the answer. Connections are kept alive, as a pooled client expects,
and :meth:`Server.close_connections` closes the ones still open when the emulator stops.
"""

import contextlib
import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from django_textclass.testing.replies import _TEXT, ReceivedRequest, has_header, plain_answer

MODEL_ROUTE = re.compile(r"/models/([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)?)")
CONTROL_PREFIX = "/_emulator/"


class Server(ThreadingHTTPServer):
    """A threaded server that can close its kept-alive connections, as a host going away."""

    daemon_threads = True
    block_on_close = False
    # Connections waiting to be accepted (socketserver's default is 5): dozens of clients
    # connecting at once (one connection per request) must not be reset.
    request_queue_size = 128
    emulator = None  # the InferenceAPIEmulator it serves, set when it starts

    def __init__(self, address):
        self._open = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        """Serve ``request`` in a thread of its own, and remember it until it is closed."""
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        """Close ``request``'s connection and forget it."""
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        """Close the connections still open (keep-alive), as a server that goes away does."""
        with self._open_lock:
            open_now = list(self._open)
        for request in open_now:
            with contextlib.suppress(OSError):  # already closed by its client
                request.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address):
        """Report an error in a handler; a client that timed out and hung up is not one."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: Server
    # HTTP/1.1 keeps connections alive, as a pooled client session expects.
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; with Nagle's algorithm on, the second
        # waits for the client's delayed ACK and every answer gains ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002
        pass  # The request log is the emulator's; stderr stays quiet.

    def do_GET(self):  # noqa: N802
        self._dispatch()

    def do_POST(self):  # noqa: N802
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _dispatch(self):
        started = time.monotonic()
        emulator = self.server.emulator
        headers = {name.lower(): value for name, value in self.headers.items()}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.close_connection = True
            self._send(411, {"Content-Type": _TEXT}, b"Length Required")
            return
        raw = self.rfile.read(int(headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = urlsplit(self.path).path
        if path.startswith(CONTROL_PREFIX):
            self._send(*emulator._control(self.command, path, body))
            return
        match = MODEL_ROUTE.fullmatch(path)
        model_id = match.group(1) if match else None
        tei = None if match else emulator._tei_route(self.command, path, headers, body)
        if tei is not None:
            (status, out_headers, payload), model_id = tei
        elif model_id is None:
            status, out_headers, payload = plain_answer(404, "Not Found")
        elif self.command != "POST":
            status, out_headers, payload = plain_answer(405, "Method Not Allowed")
            out_headers["Allow"] = "POST"
        else:
            status, out_headers, payload = emulator._classify(model_id, headers, body)
            elapsed_ms = (time.monotonic() - started) * 1000
            if not has_header(out_headers, "x-compute-time"):
                out_headers = {"x-compute-time": str(round(elapsed_ms)), **out_headers}
        # Logged before the answer leaves, so a client that has its answer also finds its entry.
        emulator._record(
            ReceivedRequest(
                method=self.command,
                path=self.path,
                model_id=model_id,
                headers=headers,
                body=body,
                raw=raw,
                received_at=started,
                status=status,
            )
        )
        self._send(status, out_headers, payload)

    def _send(self, status, headers, payload):
        try:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except ConnectionError:
            self.close_connection = True
