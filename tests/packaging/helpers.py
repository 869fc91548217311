"""What the packaging tests share: the built distributions, new virtual environments with the
wheel installed, a new ``startproject``, and the processes a user would start in it."""

import os
import re
import signal
import socket
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.helpers import ROOT, wait_for

#: The environment a user's shell would have: none of the test suite's variables.
BASE_ENV = {
    name: os.environ[name]
    for name in (
        "PATH",
        "HOME",
        "LANG",
        "TMPDIR",
        "PIP_CACHE_DIR",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "PIP_CERT",
        "PIP_DEFAULT_TIMEOUT",
        "SSL_CERT_FILE",
    )
    if name in os.environ
}
BASE_ENV["PYTHONDONTWRITEBYTECODE"] = "1"
BASE_ENV["PYTHONUNBUFFERED"] = "1"  # a server's "ready" line reaches its log at once
BASE_ENV["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"


def run(args, *, cwd=None, env=None, timeout=600, check=True):
    """Run ``args``; on a non-zero exit, fail with its output. Returns the CompletedProcess."""
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**BASE_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited with {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def build(outdir):
    """Build the wheel and the sdist of the checkout into ``outdir``; returns the build log."""
    result = run([sys.executable, "-m", "build", "--outdir", outdir, ROOT], cwd=ROOT, timeout=600)
    return result.stdout + result.stderr


class Venv:
    """A new virtual environment with the built wheel and some of its extras."""

    def __init__(self, folder, wheel, extras):
        self.folder = Path(folder)
        self.extras = extras
        venv.EnvBuilder(with_pip=True, clear=True).create(self.folder)
        spec = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
        self.install_log = run(
            [self.python, "-m", "pip", "install", "--quiet", spec], timeout=900
        ).stdout

    @property
    def python(self):
        return self.folder / "bin" / "python"

    def bin(self, name):
        return self.folder / "bin" / name

    def installed(self):
        """The distribution names installed, lower case."""
        out = run([self.python, "-m", "pip", "list", "--format=freeze"]).stdout
        return {line.split("==")[0].lower() for line in out.splitlines() if "==" in line}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Project:
    """A new ``django-admin startproject proj`` in ``folder``, run with ``env``'s Python."""

    def __init__(self, env, folder, extra_env=None):
        self.venv = env
        self.folder = Path(folder)
        self.folder.mkdir(parents=True)
        self.env = {"PATH": f"{env.folder / 'bin'}:{BASE_ENV['PATH']}", **(extra_env or {})}
        run([env.bin("django-admin"), "startproject", "proj", "."], cwd=self.folder, env=self.env)
        self.package = self.folder / "proj"

    def append(self, name, text):
        with open(self.package / name, "a") as handle:
            handle.write("\n" + text + "\n")

    def write(self, name, text):
        (self.package / name).write_text(text + "\n")

    def manage(self, *args, check=True, timeout=300):
        return run(
            [self.venv.python, "manage.py", *args],
            cwd=self.folder,
            env=self.env,
            check=check,
            timeout=timeout,
        )

    def shell(self, code, timeout=120):
        """Run ``code`` in ``manage.py shell``; returns its stdout."""
        return self.manage("shell", "-c", code, timeout=timeout).stdout

    def start(self, name, args, ready):
        """Start ``args`` (in the project, its own process group); wait for ``ready`` in its log."""
        process = Process(name, args, self.folder, self.env, self.folder / f"{name}.log")
        process.wait_for(ready)
        return process


class Process:
    """A long-running command of the project (a worker, a web server), logged to a file."""

    def __init__(self, name, args, cwd, env, log_path):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(arg) for arg in args],
            cwd=cwd,
            env={**BASE_ENV, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self):
        return self.log_path.read_text(errors="replace")

    def wait_for(self, needle, timeout=90):
        def seen():
            if self.process.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with {self.process.returncode}:\n{self.text()[-4000:]}"
                )
            return needle in self.text()

        wait_for(
            seen,
            timeout=timeout,
            interval=0.2,
            message=f"{self.name}: {needle!r}",
            describe=lambda: self.text()[-4000:],
        )

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()


def doc_blocks(path, header):
    """The fenced code blocks of ``path`` whose first line starts with ``header``, in order."""
    text = Path(path).read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    return [block for block in blocks if block.startswith(header)]
