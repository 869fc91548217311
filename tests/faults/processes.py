"""Real processes a fault scenario starts, stops, freezes and kills: brokers, beat, a web server.

Workers are :class:`tests.integration.helpers.Worker`. Every process here runs in a process
group of its own (``start_new_session``), so a kill reaches its children, and each has a
``stop()`` that the fixtures call whatever the test did to it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from tests.helpers import ROOT, free_port, missing, wait_for

#: Seconds a broker or server may take to answer after it was started, on a loaded machine.
START_TIMEOUT = 60


def _stop_group(process, timeout=15, log=None):
    """SIGTERM a process group (SIGCONT first, in case it is frozen); SIGKILL it if it lingers.

    ``log``, this process's handle on the file the group writes to, is closed.
    """
    try:
        if process is None or process.poll() is not None:
            return
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    finally:
        if log is not None:
            log.close()


class RedisServer:
    """A ``redis-server`` of the test's own, on a fixed port, without persistence.

    Restarted, it comes back empty: whatever was queued in it is lost.
    """

    def __init__(self, directory):
        if shutil.which("redis-server") is None:
            missing("redis-server is not installed (apt-get install redis-server)")
        self.directory = Path(directory)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            self.answers,
            timeout=START_TIMEOUT,
            interval=0.1,
            message=f"the test's redis-server on port {self.port}",
        )
        return self

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.settimeout(1)
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        """SIGKILL: the port closes and everything it held is gone."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def freeze(self):
        """SIGSTOP: it still accepts connections (the kernel does) but never answers."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self):
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self):
        _stop_group(self.process)


class RabbitServer:
    """A RabbitMQ node of the test's own (its own name, ports and data directory).

    Its data directory is kept across a restart unless ``restart(wipe=True)``: durable
    queues and persistent messages then survive a restart, as on a real server; a wipe
    stands for a broker replaced by a new, empty one.
    """

    def __init__(self, directory):
        self.server = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        if not self.server.exists() and shutil.which("rabbitmq-server") is None:
            missing("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        if not self.server.exists():
            self.server = Path(shutil.which("rabbitmq-server"))
        self.directory = Path(directory)
        self.port = free_port()
        self.name = f"textclass-faults-{os.getpid()}-{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.process = None
        self._log = None

    def _env(self):
        home = self.directory
        (home / "rabbitmq.conf").write_text("loopback_users = none\n")
        (home / "enabled_plugins").write_text("[].\n")
        return {
            **os.environ,
            "HOME": str(home),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        }

    def start(self):
        if self._log is not None:
            self._log.close()  # a restart's
        self._log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(self.server)],
            env=self._env(),
            cwd=self.directory,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            self.answers,
            timeout=START_TIMEOUT,
            interval=0.25,
            message=f"the test's RabbitMQ node on port {self.port}",
            describe=self.tail,
        )
        return self

    def answers(self):
        from kombu import Connection

        if self.process.poll() is not None:
            return False
        try:
            with Connection(self.url, connect_timeout=2) as conn:
                conn.connect()
                return True
        except Exception:  # noqa: BLE001 - not up yet, whatever the reason
            return False

    def tail(self):
        log = self.directory / "server.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def restart(self, *, wipe=False):
        self.kill()
        if wipe:
            shutil.rmtree(self.directory / "mnesia", ignore_errors=True)
        return self.start()

    def stop(self):
        _stop_group(self.process, timeout=30, log=self._log)


class Beat:
    """``celery beat`` sending the sweep every ``interval`` seconds."""

    def __init__(self, log_path, env, interval=0.5):
        self.log_path = Path(log_path)
        self.env = {**env, "TEXTCLASS_TEST_BEAT_INTERVAL": str(interval)}
        self.process = self._log = None

    def start(self):
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.celery_app",
                "beat",
                "--loglevel=INFO",
                f"--schedule={self.log_path.with_suffix('.schedule')}",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self):
        _stop_group(self.process, log=self._log)


class WebServer:
    """The test project served by ``runserver`` (threaded), as a site's web process."""

    def __init__(self, log_path, env):
        self.log_path = Path(log_path)
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api"
        self.process = self._log = None

    def start(self):
        # The site's Celery app imported first, as a project's __init__.py does.
        command = [
            sys.executable,
            "-c",
            "import sys, tests.celery_app; from "
            "django.core.management import execute_from_command_line as run; "
            "run(sys.argv)",
            "runserver",
            f"127.0.0.1:{self.port}",
            "--noreload",
            "--skip-checks",
        ]
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            self._answers, timeout=START_TIMEOUT, interval=0.2, message="the test's web server"
        )
        return self

    def _answers(self):
        if self.process.poll() is not None:
            raise AssertionError(f"the web server exited:\n{self.log_path.read_text()[-3000:]}")
        try:
            return requests.get(f"{self.base}/schema/", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        _stop_group(self.process, log=self._log)
