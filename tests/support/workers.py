"""Real Celery workers for tests marked `worker`: subprocesses on the test database and a Redis broker."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import redis
from django.conf import settings
from django.db import connection

from tests.support.services import require_or_skip


def broker_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        require_or_skip("worker tests need CELERY_BROKER_URL=redis://...")
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as e:
        require_or_skip(f"Redis at {url} does not answer: {e}")
    return url


def test_database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@contextmanager
def running_worker(*, concurrency: int = 2, extra_env: dict | None = None, name: str = "w1"):
    """Start `celery worker` against the test database; stop it (or let the test kill it) afterwards."""
    url = broker_url()
    redis.Redis.from_url(url).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": url,
        "RATE_LIMIT_STORAGE_URL": url,
        "DJANGO_ENV": "test",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = open(settings.BASE_DIR / "test-artifacts" / f"worker-{name}.log", "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "lineup_ops",
            "worker",
            "-Q",
            "priority,sync,default",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_ready(proc)
        yield proc
    finally:
        kill(proc, signal.SIGTERM)
        log.close()


def _wait_ready(proc, seconds: float = 30) -> None:
    from lineup_ops.celery import app

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {proc.returncode}; see test-artifacts/worker-*.log")
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("the worker did not answer a ping within 30 s")


def kill(proc, sig) -> None:
    """Signal the worker's whole process group (the main process and its pool children)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_until(predicate, *, seconds: float, every: float = 0.3, tick=None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if tick:
            tick()
        if predicate():
            return True
        time.sleep(every)
    return predicate()
