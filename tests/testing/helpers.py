"""The emulator's command line, run as a process the way a user starts it."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class EmulatorCLI:
    """``python -m django_textclass.testing.emulator --port 0 OPTIONS`` while the block runs.

    ``line`` is the first line it printed (where it listens); once the block is left it has
    been terminated, and ``returncode`` and ``stderr`` say how it ended.
    """

    def __init__(self, *options):
        self.command = [sys.executable, "-m", "django_textclass.testing.emulator"]
        self.command += ["--port", "0", *options]
        self.process = self.line = self.returncode = self.stderr = None

    def __enter__(self):
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self.command,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.line = self.process.stdout.readline()
        return self

    def __exit__(self, *exc_info):
        self.process.terminate()
        _, self.stderr = self.process.communicate(timeout=10)
        self.returncode = self.process.returncode
