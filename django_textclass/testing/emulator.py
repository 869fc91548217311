"""A loopback HTTP server that speaks the Inference API text-classification contract.

``InferenceAPIEmulator`` is a real HTTP server on 127.0.0.1 (standard library
only, no Django). It answers ``POST /models/{model_id}`` the way the
hf-inference router does (``shape="nested"``), the way TEI and dedicated
endpoints answer one string (``shape="flat"``), or the way a dedicated endpoint's
Inference Toolkit does (``shape="toolkit"``: the best label alone unless ``top_k`` is
sent), with scores from the deterministic rule in
:mod:`django_textclass.testing.scoring` (not a model). Failures are scripted:
``emu.script(Reply.loading(), Reply.normal())`` makes the next classification
request answer 503 "loading" and the one after answer normally.

``emu.tei = TEIMode()`` adds the routes of a TEI server (``/info``, ``/predict``, and
``/`` and ``/invocations`` mapped to it) with TEI's own request and answer shapes
(:mod:`django_textclass.testing.tei`); the script, the poisons and the latency apply to
its predictions too.

Other processes (a Celery worker, a benchmark) reach it over HTTP; they can
also script it and read its log through the control routes
``POST /_emulator/script``, ``GET /_emulator/requests`` (``GET /_emulator/count``: how
many), ``POST /_emulator/reset`` and ``GET /_emulator/health``.

Run it alone with ``python -m django_textclass.testing.emulator --port 8765``.
"""

import argparse
import collections
import hmac
import signal
import sys
import threading
import time

from django_textclass.testing import scoring
from django_textclass.testing.bodies import SHAPES, ValidationError, shape_answer, validate
from django_textclass.testing.replies import (
    ReceivedRequest,
    Reply,
    json_answer,
    plain_answer,
    render,
)
from django_textclass.testing.tei import PREDICT_ROUTES, Refused, TEIMode
from django_textclass.testing.transport import CONTROL_PREFIX, Server

__all__ = ["InferenceAPIEmulator", "ReceivedRequest", "Reply", "TEIMode", "main"]


class InferenceAPIEmulator:
    """A real HTTP server on loopback that answers text-classification requests.

    Args:
        host: The address to bind.
        port: The port; 0 picks a free one (read it back from ``url``).
        latency: Seconds slept before answering each request on the model route.
        per_text: Seconds more per input text (a model's cost grows with the batch).
        max_batch: Longest accepted list of inputs (422 beyond); None for no limit.
        shape: ``"nested"`` (hf-inference: ``[[...]]`` for one string),
            ``"flat"`` (TEI, dedicated endpoints: ``[...]`` for one string; lists always
            get ``[[...], ...]``) or ``"toolkit"`` (a dedicated endpoint's transformers
            pipeline: without ``top_k``, ``[{best}]`` for one string and one best object per
            input for a list; with it, even ``"top_k": null`` for every label, ``[...]``
            for one string and ``[[...], ...]`` for a list).
        token: When set, requests without ``Authorization: Bearer <token>`` get 401.
        labels: Labels per model id; other models use POSITIVE/NEGATIVE.
        tei: A :class:`~django_textclass.testing.tei.TEIMode` to serve TEI's routes too;
            None (default) answers 404 there.

    ``latency``, ``max_batch``, ``shape`` and ``tei`` may be changed while it runs.
    Every method is safe to call from any thread.
    """

    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        *,
        latency=0.0,
        per_text=0.0,
        max_batch=None,
        shape="nested",
        token=None,
        labels=None,
        tei=None,
    ):
        self.host = host
        self.port = port
        self.latency = latency
        if per_text < 0:
            raise ValueError("per_text must be >= 0")
        self.per_text = float(per_text)
        self.max_batch = max_batch
        self.shape = shape
        self.tei = tei
        self.token = token
        self.labels = {model: list(names) for model, names in (labels or {}).items()}
        if any(not names for names in self.labels.values()):
            raise ValueError("every model in `labels` needs at least one label")
        self._lock = threading.Lock()
        self._logged = threading.Condition(self._lock)
        self._script = collections.deque()
        self._log = []
        self._poison = {}
        self._window = None  # (Reply, monotonic end) of answer_for()
        self._server = None
        self._thread = None
        # Set by stop() so that hanging replies end with the server.
        self._stopping = threading.Event()

    # Run-time settings are validated on every assignment, not only in __init__.
    @property
    def latency(self):
        """Seconds slept before answering each request on the model route."""
        return self._latency

    @latency.setter
    def latency(self, value):
        if value < 0:
            raise ValueError("latency must be >= 0")
        self._latency = float(value)

    @property
    def max_batch(self):
        """Longest accepted list of inputs; None for no limit."""
        return self._max_batch

    @max_batch.setter
    def max_batch(self, value):
        if value is not None and value < 1:
            raise ValueError("max_batch must be None or >= 1")
        self._max_batch = value

    @property
    def shape(self):
        """``"nested"`` or ``"flat"``: how a single string's ranking is wrapped."""
        return self._shape

    @shape.setter
    def shape(self, value):
        if value not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, not {value!r}")
        self._shape = value

    @property
    def tei(self):
        """The :class:`TEIMode` of the TEI routes, or None when they are off."""
        return self._tei

    @tei.setter
    def tei(self, value):
        if value is not None and not isinstance(value, TEIMode):
            raise ValueError(f"tei must be None or a TEIMode, not {value!r}")
        self._tei = value

    # Lifecycle.
    def start(self):
        """Bind and serve in a daemon thread.

        Returns:
            The emulator itself.

        Raises:
            RuntimeError: If it is already running.
            OSError: If the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        server = Server((self.host, self.port))
        server.emulator = self
        self._server = server
        # A short poll interval makes stop() (and so each test's teardown) near-instant.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"inference-api-emulator-{self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, close open connections and release the port.

        A client then gets "connection refused", as from an API that is down; ``start()``
        serves on the same port again when one was given. Calling it twice is harmless.
        """
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()  # kept-alive clients too: nothing answers any more
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def url(self):
        """The base URL, ``http://host:port``; the model route is ``{url}/models/{model_id}``."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def model_url(self, model_id):
        """Return the classification URL for ``model_id``."""
        return f"{self.url}/models/{model_id}"

    # Script and log.
    def script(self, *replies):
        """Queue replies; each classification request consumes the oldest one."""
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"expected a Reply, got {type(reply).__name__}")
        with self._lock:
            self._script.extend(replies)

    @property
    def pending_replies(self):
        """How many scripted replies are still queued."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self):
        """A snapshot of the log, in the order the requests were answered."""
        with self._lock:
            return list(self._log)

    def poison(self, text, reply=None):
        """Answer ``reply`` (default: a 500) to every call whose inputs hold ``text``.

        A text the model fails on, whatever the batch it comes in; the script still goes
        first. ``reset()`` forgets every poison.
        """
        reply = reply or Reply.server_error(500)
        if not isinstance(reply, Reply):
            raise TypeError(f"expected a Reply, got {type(reply).__name__}")
        with self._lock:
            self._poison[text] = reply

    def answer_for(self, seconds, reply):
        """Answer ``reply`` to every call on the model route for the next ``seconds`` seconds.

        A state of the API that lasts a while rather than a number of calls: a model
        loading for 20 s, a rate-limit storm. It goes before the script and the poisons;
        ``seconds=0`` ends it at once, and ``reset()`` forgets it.

        Returns:
            The ``time.monotonic()`` at which it ends (the clock of ``received_at``).
        """
        if not isinstance(reply, Reply):
            raise TypeError(f"expected a Reply, got {type(reply).__name__}")
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        ends = time.monotonic() + seconds
        with self._lock:
            self._window = (reply, ends)
        return ends

    def reset(self):
        """Forget the script, the poisons, the answer_for() window and the log.

        The configuration is kept.
        """
        with self._lock:
            self._script.clear()
            self._poison.clear()
            self._window = None
            self._log.clear()

    def texts_seen(self):
        """Every input text sent to the model route, in order, across requests."""
        return [text for req in self.requests if req.model_id is not None for text in req.inputs]

    def wait_for_requests(self, n, timeout=10):
        """Block until at least ``n`` requests were answered.

        Returns:
            A snapshot of the log.

        Raises:
            TimeoutError: If fewer than ``n`` arrived within ``timeout`` seconds.
        """
        with self._logged:
            if not self._logged.wait_for(lambda: len(self._log) >= n, timeout=timeout):
                raise TimeoutError(f"{len(self._log)} of {n} requests seen after {timeout}s")
            return list(self._log)

    def _next_reply(self):
        with self._lock:
            if self._window is not None:
                reply, ends = self._window
                if time.monotonic() < ends:
                    return reply
                self._window = None
            return self._script.popleft() if self._script else None

    def _record(self, request):
        with self._logged:
            self._log.append(request)
            self._logged.notify_all()

    # Answering.
    def _scripted(self, model_id, headers, texts_sent):
        """Sleep the latency; return the scripted answer of this request, or None."""
        reply = self._next_reply()
        delay = self.latency + (reply.delay if reply else 0.0) + self.per_text * texts_sent
        if delay:
            self._stopping.wait(delay)
        if reply is not None and not reply.passthrough:
            return render(reply, model_id, headers.get("authorization", ""))
        return None

    def _poisoned(self, texts, model_id, headers):
        """The answer of the first poisoned text among ``texts``, or None."""
        with self._lock:
            poisoned = [
                self._poison[text]
                for text in texts
                if isinstance(text, str) and text in self._poison
            ]
        if poisoned:
            return render(poisoned[0], model_id, headers.get("authorization", ""))
        return None

    def _classify(self, model_id, headers, body):
        if self.token is not None:
            sent = headers.get("authorization", "").encode()
            if not hmac.compare_digest(sent, f"Bearer {self.token}".encode()):
                return json_answer(401, {"error": "Invalid credentials in Authorization header"})
        inputs = body.get("inputs") if isinstance(body, dict) else None
        scripted = self._scripted(model_id, headers, len(inputs) if isinstance(inputs, list) else 1)
        if scripted is not None:
            return scripted
        toolkit = self.shape == "toolkit"
        try:
            inputs, parameters, top_k_sent = validate(body, null_top_k=toolkit)
            max_batch = self.max_batch
            if isinstance(inputs, list) and max_batch is not None and len(inputs) > max_batch:
                raise ValidationError(
                    422,
                    {
                        "error": f"batch size {len(inputs)} exceeds the maximum of {max_batch}",
                        "error_type": "Validation",
                    },
                )
        except ValidationError as exc:
            return json_answer(exc.status, exc.payload)
        labels = self.labels.get(model_id, list(scoring.DEFAULT_LABELS))
        texts = [inputs] if isinstance(inputs, str) else inputs
        poisoned = self._poisoned(texts, model_id, headers)
        if poisoned is not None:
            return poisoned
        rankings = [scoring.rank(labels, text, **parameters) for text in texts]
        return json_answer(
            200, shape_answer(self.shape, rankings, isinstance(inputs, str), top_k_sent)
        )

    def _tei_route(self, method, path, headers, body):
        """``(answer, model_id)`` of a TEI route, or None for a path TEI does not serve."""
        tei = self.tei
        if tei is None or path not in (*PREDICT_ROUTES, "/info", "/health"):
            return None
        if self.token is not None:
            sent = headers.get("authorization", "").encode()
            if not hmac.compare_digest(sent, f"Bearer {self.token}".encode()):
                return (401, {}, b""), None  # TEI's --api-key refusal has no body
        labels = self.labels.get(tei.model_id, list(scoring.DEFAULT_LABELS))
        if path in ("/info", "/health"):
            if method != "GET":
                return _not_allowed("GET"), None
            if path == "/health":
                return (200, {}, b""), None
            if not tei.info:
                return plain_answer(404, "Not Found"), None
            return json_answer(200, tei.info_object(labels)), None
        if method != "POST":
            return _not_allowed("POST"), tei.model_id
        inputs = body.get("inputs") if isinstance(body, dict) else None
        scripted = self._scripted(
            tei.model_id,
            headers,
            len(inputs)
            if isinstance(inputs, list) and inputs and isinstance(inputs[0], list)
            else 1,
        )
        if scripted is not None:
            return scripted, tei.model_id
        try:
            sequences, batch, truncate, raw_scores = tei.read(headers, body)
        except Refused as refused:
            return refused.answer, tei.model_id
        poisoned = self._poisoned(
            [text for seq in sequences for text in seq], tei.model_id, headers
        )
        if poisoned is not None:
            return poisoned, tei.model_id
        return tei.predictions(labels, sequences, batch, truncate, raw_scores), tei.model_id

    def _control(self, method, path, body):
        route = (method, path[len(CONTROL_PREFIX) :])
        if route == ("GET", "health"):
            return json_answer(200, {"status": "ok"})
        if route == ("GET", "requests"):
            return json_answer(200, [req.to_dict() for req in self.requests])
        if route == ("GET", "count"):
            with self._lock:
                return json_answer(200, {"requests": len(self._log)})
        if route == ("POST", "reset"):
            self.reset()
            return json_answer(200, {"reset": True})
        if route == ("POST", "script"):
            if not isinstance(body, list):
                return json_answer(400, {"error": "expected a JSON list of replies"})
            try:
                replies = [Reply.from_dict(item) for item in body]
            except (TypeError, ValueError) as exc:
                return json_answer(400, {"error": str(exc)})
            self.script(*replies)
            return json_answer(200, {"scripted": len(replies), "pending": self.pending_replies})
        return plain_answer(404, "Not Found")


def _not_allowed(allow):
    status, headers, payload = plain_answer(405, "Method Not Allowed")
    headers["Allow"] = allow
    return status, headers, payload


def main(argv=None):
    """Serve from the command line until Ctrl-C or SIGTERM.

    Args:
        argv: Command-line arguments without the program name; None reads ``sys.argv``.

    Returns:
        The exit status, 0.
    """
    parser = argparse.ArgumentParser(
        prog="python -m django_textclass.testing.emulator",
        description="Loopback Hugging Face Inference API emulator (text-classification).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument(
        "--per-text", type=float, default=0.0, help="seconds more per text in a request"
    )
    parser.add_argument("--max-batch", type=int, default=None)
    parser.add_argument("--shape", choices=SHAPES, default="nested")
    parser.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    parser.add_argument(
        "--tei",
        action="store_true",
        help="serve TEI's routes too (/info, /predict, /, /invocations)",
    )
    parser.add_argument(
        "--max-client-batch-size", type=int, default=32, help="TEI's batch limit (with --tei)"
    )
    args = parser.parse_args(argv)
    emulator = InferenceAPIEmulator(
        args.host,
        args.port,
        latency=args.latency,
        per_text=args.per_text,
        max_batch=args.max_batch,
        shape=args.shape,
        token=args.token,
        tei=TEIMode(max_client_batch_size=args.max_client_batch_size) if args.tei else None,
    )
    done = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (what a supervisor or Popen.terminate() sends) is a clean stop too.
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    with emulator:
        route = "/models/{model_id}" + (", TEI: /predict, /info" if args.tei else "")
        print(f"Inference API emulator listening on {emulator.url} (route: {route})", flush=True)
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
