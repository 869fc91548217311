"""kombu's filesystem broker, with message files that appear only once they are complete.

kombu's ``filesystem://`` transport (as of kombu 5.7.0) creates a message file under its final
name and only then writes it, and a consumer takes any file whose name matches without waiting
for the producer's lock. A consumer that lists the folder in between takes an empty or partial
file, cannot decode it, and the Celery worker stops ("Unrecoverable error: JSONDecodeError").
The more threads publish, the likelier it is.

This transport closes the window on both sides:

- a producer writes each message under a hidden temporary name in the same folder
  (``.<name>.partial``), then gives it its final name with :func:`os.replace`, which is atomic
  within a folder: a consumer finds no file, or a whole one;
- a consumer skips every hidden name, and claims a message by renaming it, within the folder,
  to a hidden name (``.<name>.claimed``) before reading it. One rename succeeds, so each file
  goes to exactly one consumer; kombu's move to the system's temporary folder is a copy when
  that folder is on another filesystem, and two consumers could then both copy the same file.

Everything else is kombu's: message names (``<ms>_<uuid>.<queue>.msg``) and their JSON content,
the transport options (``data_folder_in``, ``data_folder_out``, ``store_processed``,
``processed_folder``, ``control_folder``, ``polling_interval``), the exchange tables and fanout.
Size and purge see the files the consumer would take. kombu's own consumer never takes a
temporary file either: it wants the part of a name after the first dot to be ``<queue>.msg``,
and a temporary name ends otherwise.

Select it with the broker URL ``textclass-filesystem://``. kombu finds a URL's transport in
:data:`kombu.transport.TRANSPORT_ALIASES` and refuses an import path as a URL scheme, so
importing this module adds the alias; the import has to run, in every process, before the first
broker connection is built. The module that defines the Celery app is that place::

    import django_textclass.brokers.filesystem  # noqa: F401  (textclass-filesystem://)

``celery -A proj worker`` and ``celery -A proj beat`` import it before they read a setting, and
Django imports it through the project package's ``__init__.py``. This module imports nothing of
Django or of the app, so a settings module may import it as well.

Like kombu's, the transport serves the processes of one host, and a message a worker has taken
lives only in its memory until the task ends.
"""

import contextlib
import os
import shutil
import time
import uuid
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

#: The broker URL scheme of this transport: ``textclass-filesystem://``.
SCHEME = "textclass-filesystem"
#: Suffix of a message still being written by its producer.
PARTIAL = ".partial"
#: Suffix of a message a consumer has taken and is reading.
CLAIMED = ".claimed"


def message_name(queue):
    """A new message file name for ``queue``, in kombu's format: ``<ms>_<uuid>.<queue>.msg``.

    The milliseconds come from the monotonic clock, as kombu's do: names sort by age to the
    millisecond (then at random), among ours and a stock producer's alike.
    """
    return f"{time.monotonic_ns() // 1_000_000}_{uuid.uuid4()}.{queue}.msg"


def is_message_of(name, queue):
    """Whether the file ``name`` is a complete, unclaimed message of ``queue``.

    kombu's rule (what follows the first dot is ``<queue>.msg``), with hidden names excluded:
    those are being written or being read.
    """
    return not name.startswith(".") and name.partition(".")[2] == f"{queue}.msg"


class Channel(filesystem.Channel):
    """kombu's filesystem channel, publishing by rename and claiming by rename."""

    def _put(self, queue, payload, **kwargs):
        """Add ``payload`` to ``queue``: the file appears whole, or not at all.

        Raises:
            ChannelError: the folder cannot be written to; no file is left behind.
        """
        name = message_name(queue)
        folder = self.data_folder_out
        partial = os.path.join(folder, f".{name}{PARTIAL}")
        data = str_to_bytes(dumps(payload))
        try:
            # "x" rather than "w": a name is never reused. No lock either: no consumer looks
            # at a hidden name, and the rename below is what makes the file visible.
            with open(partial, "xb") as file:
                file.write(data)
            os.replace(partial, os.path.join(folder, name))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add a message to the folder {folder!r}") from exc

    def _get(self, queue):
        """Take the oldest complete message of ``queue`` and return its payload.

        Raises:
            queue.Empty: no message of ``queue`` is waiting.
            ChannelError: a message cannot be claimed or read.
        """
        folder = self.data_folder_in
        for name in sorted(os.listdir(folder)):
            if not is_message_of(name, queue):
                continue
            claimed = os.path.join(folder, f".{name}{CLAIMED}")
            try:
                os.rename(os.path.join(folder, name), claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            except OSError as exc:
                raise ChannelError(f"Cannot claim the message {name!r}") from exc
            return loads(bytes_to_str(self._read_claimed(claimed, name)))
        raise Empty()

    def _size(self, queue):
        """How many complete, unclaimed messages of ``queue`` wait in the folder."""
        return sum(is_message_of(name, queue) for name in os.listdir(self.data_folder_in))

    def _purge(self, queue):
        """Delete the waiting messages of ``queue``; return how many this call deleted."""
        deleted = 0
        for name in os.listdir(self.data_folder_in):
            if is_message_of(name, queue):
                with contextlib.suppress(FileNotFoundError):  # a consumer took it meanwhile
                    os.remove(os.path.join(self.data_folder_in, name))
                    deleted += 1
        return deleted

    def _read_claimed(self, claimed, name):
        """The bytes of a claimed message, which is then removed or kept as kombu's options say."""
        try:
            with open(claimed, "rb") as file:
                data = file.read()
            if self.store_processed:
                shutil.move(claimed, os.path.join(self.processed_folder, name))
            else:
                os.remove(claimed)
        except OSError as exc:
            raise ChannelError(f"Cannot read the message {name!r}") from exc
        return data


class Transport(filesystem.Transport):
    """kombu's filesystem transport with :class:`Channel`; URL ``textclass-filesystem://``."""

    Channel = Channel
    # kombu's declarations live in a class attribute a subclass would share; this transport
    # keeps its own, so a process using both does not mix their exchanges.
    global_state = virtual.BrokerState()


def register():
    """Make ``textclass-filesystem://`` a broker URL kombu resolves to :class:`Transport`.

    Importing this module calls it; calling it again changes nothing.
    """
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"


register()
