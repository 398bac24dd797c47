"""Shared set-up for benchmarks: a fresh PostgreSQL database, migrated, and real workers on Redis.

Benchmarks print their figures; they never assert wall-clock times.
"""
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13")


def setup_django(db_name: str, *, fresh: bool = True, extra_env: dict | None = None) -> None:
    """Point Django at a benchmark database (dropped and re-created when fresh) and migrate it."""
    import psycopg

    if fresh:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{db_name}"')
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "lineup_ops.settings",
        "DATABASE_URL": f"{PG}/{db_name}",
        "CELERY_BROKER_URL": REDIS,
        "RATE_LIMIT_STORAGE_URL": REDIS,
        "DJANGO_ENV": "test",
        **(extra_env or {}),
    })
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextmanager
def workers(n: int, *, concurrency: int = 2, extra_env: dict | None = None):
    """n Celery worker processes on the benchmark database; stopped (SIGTERM) afterwards."""
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    procs = []
    log = open(ROOT / "bench" / "out" / "workers.log", "ab")
    for i in range(n):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "lineup_ops", "worker", "-Q", "priority,sync,default", "--pool=prefork",
             f"--concurrency={concurrency}", "--loglevel=WARNING", "-n", f"bench{i}@%h", "--without-mingle",
             "--without-gossip"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
    try:
        from lineup_ops.celery import app

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(app.control.ping(timeout=0.5) or []) < n:
            pass
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        log.close()


def table(rows: list[dict]) -> str:
    """A plain text table of the figures."""
    if not rows:
        return ""
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    line = "  ".join(c.ljust(width[c]) for c in cols)
    out = [line, "  ".join("-" * width[c] for c in cols)]
    out += ["  ".join(str(r.get(c, "")).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(out)
