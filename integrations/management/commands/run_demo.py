"""Run the whole demo: sandbox provider, seed data, Celery worker and beat, and the web console. Ctrl-C stops all."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import requests
from celery import signature
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings


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


class Command(BaseCommand):
    help = "Start the demo: sandbox, seed, worker, beat and web on http://127.0.0.1:8000 (Ctrl-C stops everything)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8765)

    def handle(self, *args, port, sandbox_port, **options):
        for p in (port, sandbox_port):
            if not _port_free("127.0.0.1", p):
                raise CommandError(
                    f"Port {p} on 127.0.0.1 is in use: stop what runs there (an earlier demo?)."
                )
        for folder in (settings.BROKER_FOLDER, settings.VAR_DIR / "broker-processed"):
            folder.mkdir(parents=True, exist_ok=True)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        console_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "SANDBOX_URL": sandbox_url,
            "CONSOLE_URL": console_url,
            "DEMO_ACTIVITY": "1",
            "PYTHONUNBUFFERED": "1",
        }
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        celery = [sys.executable, "-m", "celery", "-A", "lineup_ops"]
        self.children: list[tuple[str, subprocess.Popen]] = []
        # Ctrl-C and SIGTERM both stop everything (even when started from a script that ignores SIGINT).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            state_file = str(settings.VAR_DIR / "sandbox-state.pickle")
            self._start(
                "sandbox",
                manage + ["run_sandbox", "--port", str(sandbox_port), "--state-file", state_file],
                env,
            )
            if not _wait_http(f"{sandbox_url}/_control/health", 30):
                raise CommandError("The sandbox provider did not start; see its output above.")
            with override_settings(SANDBOX_URL=sandbox_url, CONSOLE_URL=console_url, DEMO_ACTIVITY=True):
                call_command("seed_demo", sandbox_url=sandbox_url, stdout=self.stdout)
                call_command("setup_schedules", stdout=self.stdout)
            self._start(
                "worker",
                celery
                + [
                    "worker",
                    "--loglevel=INFO",
                    "--pool=threads",
                    "--concurrency=4",
                    "-Q",
                    "priority,sync,default",
                ],
                env,
            )
            self._start("beat", celery + ["beat", "--loglevel=INFO"], env)
            # Records seeded (or changed while the demo was stopped) get their first sync now, not at the first sweep.
            signature("integrations.sweep_pending_records").delay()
            self._start("web", manage + ["runserver", f"127.0.0.1:{port}", "--noreload"], env)
            if not _wait_http(f"http://127.0.0.1:{port}/admin/login/", 60):
                raise CommandError("The web console did not start; see its output above.")
            login = (settings.VAR_DIR / "demo-login.txt").read_text().strip()
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nLineup Ops is running: http://127.0.0.1:{port}/admin/\n"
                    f"Log in as admin (everything), operator (runs actions) or viewer (read only), password: {login}\n"
                    f"Sandbox provider: {sandbox_url} (control API under /_control/). Press Ctrl-C to stop everything.\n"
                )
            )
            while True:
                for name, proc in self.children:
                    if proc.poll() is not None:
                        raise CommandError(
                            f"The {name} process stopped (exit {proc.returncode}); stopping the demo."
                        )
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the demo…")
        finally:
            self._stop_all()

    def _start(self, name: str, argv: list[str], env: dict) -> None:
        # Each child leads its own process group so that Ctrl-C reaches it only through us, in order; and each is
        # told to stop if we die without stopping it (Linux's parent-death signal).
        proc = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        self.children.append((name, proc))

    def _stop_all(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.stdout.write("Stopped.")
