"""A real pseudo-terminal for the progress tests: what a person at a terminal sees."""

import fcntl
import os
import pty
import select
import struct
import termios


class Terminal:
    """A pty pair: ``stream`` is the terminal side a command writes to; :meth:`read` reads it."""

    def __init__(self, rows=24, columns=100):
        self.master, slave = pty.openpty()
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.stream = os.fdopen(slave, "w", encoding="utf-8", buffering=1)
        self._seen = b""

    def read(self):
        """Everything written so far (it never blocks)."""
        self.stream.flush()
        while select.select([self.master], [], [], 0.05)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self._seen += chunk
        return self._seen.decode("utf-8", errors="replace")

    def close(self):
        """Close both sides."""
        self.stream.close()
        os.close(self.master)
