"""``manage.py rundemo``: the whole demo (database, admin user, worker, beat, web) in one go."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

STOP_TIMEOUT = 10  # seconds a child gets to shut down before it is killed


def redact_url(url):
    """Return ``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def describe_database():
    """Say which database is in use, without its password."""
    db = settings.DATABASES["default"]
    engine = db["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"SQLite {db['NAME']}"
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"{engine} {db.get('USER', '')}@{host}{port}/{db['NAME']}"


def describe_broker():
    """Say which Celery broker is in use, without its password."""
    url = settings.CELERY_BROKER_URL
    scheme = url.partition("://")[0]
    if scheme in ("textclass-filesystem", "filesystem"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        return f"{scheme}:// (folder {folder})"
    return redact_url(url)


def describe_backend():
    """Say which classification backend is in use (never the token itself)."""
    backend = settings.TEXTCLASS["BACKENDS"]["default"]
    text = backend["BACKEND"]
    api_url = backend.get("OPTIONS", {}).get("API_URL")
    if api_url:
        text += f" (API_URL {api_url})"
    if backend["BACKEND"].endswith(".huggingface.Backend"):
        text += "; HF_TOKEN is " + ("set" if os.environ.get("HF_TOKEN") else "NOT set")
    return text


class Command(BaseCommand):
    """Migrate, (re)create the ``admin`` user, start a Celery worker and beat, serve HTTP."""

    help = (
        "Run the django-textclass demo: migrate, create an admin user with a fresh password, "
        "start a Celery worker and beat, and serve the site on 127.0.0.1."
    )

    def add_arguments(self, parser):
        """Add --port and --no-worker."""
        parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000).")
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Do not start the Celery worker and beat (run them yourself).",
        )

    def handle(self, *args, port, no_worker, **options):
        """Run the demo until Ctrl-C (or SIGTERM), then stop the children."""
        self._check_port_free(port)

        self.stdout.write(f"Database: {describe_database()}")
        self.stdout.write(f"Broker:   {describe_broker()}")
        self.stdout.write(f"Backend:  {describe_backend()}")

        call_command("migrate", interactive=False, verbosity=1)
        self._seed_reviews()
        password = self._reset_admin()
        self._print_box(f"Admin: http://127.0.0.1:{port}/admin/  user: admin  password: {password}")

        # SIGTERM (a service manager) and SIGHUP (the terminal closed) would otherwise kill
        # this process without running `finally`, leaving the worker and beat behind; SIGINT
        # is set explicitly because a shell starts background jobs with it ignored.
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, _raise_keyboard_interrupt)
        self._stopping = threading.Event()
        children = []
        try:
            if not no_worker:
                worker = _celery(
                    "worker",
                    "--concurrency=2",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                )
                children.append(self._start("worker", worker))
                children.append(self._start("beat", _celery("beat")))
            else:
                celery = f"cd example_project && {shown_python('..')} -m celery -A example_project"
                self.stdout.write(
                    "--no-worker: start a Celery worker and beat yourself:\n"
                    f"  {celery} worker --loglevel=INFO\n"
                    f"  {celery} beat --loglevel=INFO"
                )
            self.stdout.write(
                f"Try it: {shown_python()} example_project/manage.py shell -c "
                "\"import django_textclass; print(django_textclass.classify('What a lovely day'))\""
            )
            call_command(
                "runserver",
                f"127.0.0.1:{port}",
                use_reloader=False,
                # Serve the admin's CSS/JS even when DJANGO_DEBUG is off: this is a demo.
                insecure_serving=True,
            )
        except KeyboardInterrupt:
            pass
        finally:
            self._stopping.set()
            # A second Ctrl-C must not abandon the children half-way: each one is
            # killed anyway after STOP_TIMEOUT seconds.
            for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                signal.signal(signum, signal.SIG_IGN)
            _stop_all(children, self._say)

    def _say(self, line):
        """Write a line to stdout, if anyone still reads it.

        Behind ``scripts/demo | tee log``, Ctrl-C stops ``tee`` too: a write to the pipe
        then fails, and must not keep the children from being stopped.
        """
        try:
            self.stdout.write(line)
            self.stdout.flush()
        except (BrokenPipeError, OSError):
            # Nothing reads it now: further writes, and the one at exit, go nowhere.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    def _check_port_free(self, port):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                raise CommandError(
                    f"Port {port} on 127.0.0.1 is busy ({exc.strerror}); try --port 8123."
                ) from exc

    def _seed_reviews(self):
        """A month of product reviews and comments (first run only; see reviews/seed.py)."""
        from reviews.models import Review
        from reviews.seed import LIVE, seed

        if Review.objects.exists():
            return
        self.stdout.write(
            "Seeding a month of product reviews, classified as they would have "
            "been (takes a few seconds, once)..."
        )
        seeded = seed()
        self.stdout.write(
            f"Seeded {seeded} product reviews with comments over the past 30 days; the newest "
            f"{LIVE} are left to the worker. See Product reviews, and Classification requests > "
            "Label distributions, in the admin (a very negative comment gets hidden)."
        )

    def _reset_admin(self):
        user_model = get_user_model()
        password = secrets.token_urlsafe(12)
        user = user_model._default_manager.filter(username="admin").first()
        if user is None:
            user_model._default_manager.create_superuser("admin", "admin@example.com", password)
        else:
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(password)
            user.save()
        return password

    def _print_box(self, line):
        rule = "+" + "-" * (len(line) + 4) + "+"
        self.stdout.write(self.style.SUCCESS(f"\n{rule}\n|  {line}  |\n{rule}\n"))

    def _start(self, name, argv):
        self.stdout.write(f"Starting Celery {name}: {' '.join(argv[2:])}")
        process = subprocess.Popen(
            argv,
            cwd=settings.BASE_DIR,
            # Own process group: Ctrl-C reaches only this command, which then stops the
            # children in order; a kill can take a worker's pool processes along.
            start_new_session=True,
        )
        threading.Thread(
            target=self._watch, args=(name, process), daemon=True, name=f"watch-{name}"
        ).start()
        return name, process

    def _watch(self, name, process):
        code = process.wait()
        if not self._stopping.is_set():
            self.stderr.write(
                f"Celery {name} exited early with code {code}; requests will stay queued "
                "until it runs again (see its output above)."
            )


def shown_python(folder=""):
    """This interpreter as a command to type in ``folder`` (relative to the repository).

    ``scripts/demo`` runs the demo with ``.venv/bin/python``: the commands the demo prints
    name it too, since a bare ``python`` may be another interpreter, without the package.
    An interpreter outside the repository is shown by its absolute path.
    """
    executable = Path(os.path.abspath(sys.executable))
    try:
        inside = executable.relative_to(settings.BASE_DIR.parent)
    except ValueError:
        return str(executable)
    return str(Path(folder) / inside) if folder else str(inside)


def _celery(*args):
    return [sys.executable, "-m", "celery", "-A", "example_project", *args, "--loglevel=INFO"]


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_all(children, say):
    """Send SIGTERM (Celery's warm shutdown) to all; kill any left after STOP_TIMEOUT s.

    Every child is signalled before anything is written: ``say`` may find nobody reading.
    """
    running = [(name, process) for name, process in children if process.poll() is None]
    for _, process in running:
        process.terminate()
    for name, process in running:
        say(f"Stopping Celery {name} (pid {process.pid})...")
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"Celery {name} did not stop in {STOP_TIMEOUT} s; killing it.")
            try:
                # Its own session (start_new_session): the group is the child and its pool.
                os.killpg(process.pid, signal.SIGKILL)
            except (AttributeError, ProcessLookupError, PermissionError):
                process.kill()
            process.wait()
