"""Shared set-up for benchmarks: a fresh PostgreSQL database, migrated, and real workers on Redis.

Benchmarks print their figures; they never assert wall-clock times.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def private_postgres():
    """With BENCH_PG_PRIVATE=1: a PostgreSQL cluster of the benchmark's own (initdb with the stock configuration,
    under /tmp, on a free port), so that a colleague restarting the shared server cannot break a run. Child
    processes find it through BENCH_PG. Otherwise (the default) the shared server at BENCH_PG is used."""
    global PG
    if os.environ.get("BENCH_PG_PRIVATE") != "1":
        yield PG
        return
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="lineup-bench-pg-"))
    port = _free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(data, "postgres")
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(data / "server.log"),
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    previous, PG = PG, f"postgres://postgres@127.0.0.1:{port}"
    os.environ["BENCH_PG"] = PG
    try:
        yield PG
    finally:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(data, ignore_errors=True)
        os.environ.pop("BENCH_PG", None)
        PG = previous


REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/11")


@contextmanager
def private_redis():
    """A Redis server of the benchmark's own on a free port (so that a colleague restarting the shared Redis, as
    `make faults` does, cannot break a run); child processes find it through BENCH_REDIS. Nothing is started when
    BENCH_REDIS is set or redis-server is not installed."""
    global REDIS
    if os.environ.get("BENCH_REDIS") or not shutil.which("redis-server"):
        yield REDIS
        return
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis

    previous, REDIS = REDIS, f"redis://127.0.0.1:{port}/11"
    os.environ["BENCH_REDIS"] = REDIS
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(REDIS).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield REDIS
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.environ.pop("BENCH_REDIS", None)
        REDIS = previous


def setup_django(db_name: str, *, fresh: bool = True, extra_env: dict | None = None) -> None:
    """Point Django at a benchmark database (dropped and re-created when fresh) and migrate it."""
    import psycopg

    if fresh:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{db_name}"')
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "lineup_ops.settings",
            "DATABASE_URL": f"{PG}/{db_name}",
            "CELERY_BROKER_URL": REDIS,
            "RATE_LIMIT_STORAGE_URL": REDIS,
            "DJANGO_ENV": "test",
            **(extra_env or {}),
        }
    )
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
        procs.append(
            subprocess.Popen(
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
                    "--loglevel=WARNING",
                    "-n",
                    f"bench{i}@%h",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
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
