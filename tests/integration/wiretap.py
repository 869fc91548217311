"""A TCP relay in front of a broker that keeps every byte it passes, both ways.

The token-leak test points its worker and its own publishing at the relay, so that every
message the broker carried (and everything else said to it) can be searched afterwards,
whatever the broker (Redis, RabbitMQ) and whoever consumed the message.
"""

import contextlib
import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit


class Wiretap:
    """Relays ``127.0.0.1:<port>`` to ``target``'s host and port, recording each direction.

    Args:
        target: a broker URL (``redis://host:port/db``, ``amqp://user:pw@host:port/vhost``).
    """

    def __init__(self, target):
        self.target = target
        parts = urlsplit(target)
        self._upstream = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._streams = []  # one bytearray per connection and direction
        self._sockets = []
        self._threads = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def url(self):
        """``target`` with the relay's address in place of the broker's."""
        parts = urlsplit(self.target)
        credentials = parts.netloc.rpartition("@")[0]
        address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        netloc = f"{credentials}@{address}" if credentials else address
        return urlunsplit(parts._replace(netloc=netloc))

    def start(self):
        self._spawn(self._accept)
        return self

    def stop(self, timeout=10):
        """Take no more connections; let the open ones end (their bytes all recorded), then close.

        A connection whose client has closed it ends by itself once every byte it sent was
        read and passed on; one still open after ``timeout`` seconds is cut. Calling it
        again changes nothing.
        """
        self._closed.set()
        self._listener.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def recorded(self):
        """Every byte passed so far, one ``bytes`` per connection and direction.

        Complete once :meth:`stop` returned: until then bytes a client sent may still wait in
        the relay's socket.
        """
        with self._lock:
            return [bytes(stream) for stream in self._streams]

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self):
        self._listener.settimeout(0.1)  # a blocked accept() would not see the listener close
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            client.settimeout(None)
            upstream = socket.create_connection(self._upstream, timeout=10)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
                sent, received = bytearray(), bytearray()
                self._streams += [sent, received]
            self._spawn(self._pump, client, upstream, sent)
            self._spawn(self._pump, upstream, client, received)

    def _pump(self, source, sink, record):
        try:
            while chunk := source.recv(65536):
                with self._lock:
                    record += chunk
                sink.sendall(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
