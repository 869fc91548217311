"""Drive headless Chromium through the DevTools protocol over a pipe (no extra package).

``--screenshot`` and ``--dump-dom`` cannot carry a session cookie, and the dashboard
is behind a login. ``--remote-debugging-pipe`` lets this process talk to the browser
on file descriptors 3 and 4 (NUL-terminated JSON messages): set the cookie, open the
page, wait for its load event, then take the DOM and a full-page screenshot. It needs
nothing beyond the ``chromium`` binary: no websocket client, no Playwright.
"""

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1400,2200",
    "--remote-debugging-pipe",
]


def find_chromium():
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium process, spoken to over the DevTools pipe."""

    def __init__(self, binary, timeout=60):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="textclass-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes():
            # Runs in the child: the protocol expects fds 3 (commands in) and 4 (replies
            # out). Copy both out of the way first, in case either already is 3 or 4.
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(high_r, 3)  # os.dup2 makes the copy inheritable
            os.dup2(high_w, 4)

        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        # close_fds=False: every other fd of this process is close-on-exec already, and
        # closing "all but 3 and 4" would run after wire_pipes and undo it.
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            close_fds=False,
            preexec_fn=wire_pipes,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events = []
        self.evaluated = None

    def send(self, method, params=None, session=None):
        """Send one command and return its result (raises on a protocol error)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, session=None):
        """Wait for the event ``method`` (already received ones count)."""
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(index)
            self.events.append(self._read())

    def _read(self):
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe: " + self.stderr_tail())
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def stderr_tail(self):
        """The end of Chromium's output (for error messages)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def open_page(self, url, cookies=(), script=None):
        """Open ``url`` in a new tab with ``cookies`` set; returns ``(html, png_bytes)``.

        ``script``, a JavaScript expression, is evaluated in the loaded page; its value
        (JSON-serialisable) is then in :attr:`evaluated`.
        """
        if cookies:
            self.send("Storage.setCookies", {"cookies": list(cookies)})
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1400, "height": 2200, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        self.send("Page.enable", session=session)
        self.send("Page.navigate", {"url": url}, session)
        self.wait_event("Page.loadEventFired", session)
        html = self.send(
            "Runtime.evaluate",
            {
                "expression": "document.documentElement.outerHTML",
                "returnByValue": True,
            },
            session,
        )["result"]["value"]
        if script is not None:
            self.evaluated = self.send(
                "Runtime.evaluate",
                {
                    "expression": script,
                    "returnByValue": True,
                },
                session,
            )["result"].get("value")
        shot = self.send("Page.captureScreenshot", {"format": "png"}, session)
        return html, base64.b64decode(shot["data"])

    def close(self):
        """Ask the browser to quit; kill it if it does not; remove its profile."""
        try:
            if self.process.poll() is None:
                with contextlib.suppress(RuntimeError, TimeoutError, OSError):
                    self.send("Browser.close")
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        finally:
            for fd in (self._to_browser, self._from_browser):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)
