"""Processes the suite starts (workers, console) and the services it restarts (Redis, PostgreSQL).

Every child runs in its own session (process group), is registered in `Procs`, and is stopped by
`Procs.stop_all()` in the suite's `finally` (also after Ctrl-C or SIGTERM). Restarted services are put back
to running by `ensure_services_running()`, also in that `finally`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "faults" / "out"
# FAULTS_PRIVATE=1: a redis-server and a PostgreSQL cluster of the suite's own (free ports, under /tmp), so that
# faults 3 and 4 restart only what the suite started, not the servers others on this machine are using.
PRIVATE = os.environ.get("FAULTS_PRIVATE") == "1"
PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
_private: dict = {}

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    str(REDIS_PORT),
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One child process in its own process group, its output in faults/out/<name>.log."""

    def __init__(self, name: str, argv: list[str], env: dict):
        OUT.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = OUT / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group, SIGKILL what is left after `timeout` (pool children included)."""
        if self.alive():
            self.kill_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # The main process may be gone while its pool children linger: the group gets a SIGKILL either way.
        self.kill_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if not self._log.closed:
            self._log.close()


class Procs:
    def __init__(self):
        self.all: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict) -> Proc:
        proc = Proc(name, argv, env)
        self.all.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.all):
            try:
                proc.stop()
            except Exception as e:  # noqa: BLE001 - cleanup goes on with the others
                print(f"  (cleanup: {proc.name}: {e})", file=sys.stderr)


def start_worker(procs: Procs, name: str, env: dict, concurrency: int = 2) -> Proc:
    return procs.start(
        name,
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
        env,
    )


def wait_workers(app, names: list[str], seconds: float = 45.0) -> bool:
    """Until every named worker answers a ping (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with app.connection() as conn:  # a fresh connection: a pooled one may predate a broker restart
                replies = app.control.ping(timeout=1.0, connection=conn) or []
        except Exception:  # noqa: BLE001 - the broker may be restarting
            replies = []
            time.sleep(0.5)
        seen = {name.split("@")[0] for reply in replies for name in reply}
        if all(n in seen for n in names):
            return True
    return False


def start_console(procs: Procs, port: int, env: dict) -> Proc:
    return procs.start(
        "console", [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], env
    )


# ------------------------------------------------------------------------------------------ Redis


def redis_up(timeout: float = 1.0) -> bool:
    """PING over a plain socket (redis-py would retry a refused connection for seconds)."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(wait: float = 15.0) -> bool:
    if redis_up():
        return True
    subprocess.run(REDIS_START, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=15)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if redis_up():
            return True
        time.sleep(0.2)
    return False


def stop_redis() -> None:
    """SHUTDOWN NOSAVE: the server keeps nothing on disk anyway; every queue and quota key is lost."""
    subprocess.run(
        ["redis-cli", "-h", REDIS_HOST, "-p", str(REDIS_PORT), "shutdown", "nosave"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=15,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and redis_up(0.3):
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------ PostgreSQL


def pg_cluster() -> str | None:
    """The cluster version to restart, or None when PostgreSQL cannot be restarted here."""
    if "pg_data" in _private:
        return "private"
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        return None
    try:
        versions = sorted(os.listdir("/etc/postgresql"))
    except OSError:
        return None
    return versions[-1] if versions else None


def pg_ctl(action: str) -> int:
    if "pg_data" in _private:
        return _private_pg_ctl(action)
    version = pg_cluster()
    if version is None:
        return 1
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    ).returncode


def pg_up(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def start_pg(dsn: str, wait: float = 30.0) -> bool:
    if pg_up(dsn):
        return True
    pg_ctl("start")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if pg_up(dsn):
            return True
        time.sleep(0.3)
    return False


def ensure_services_running(dsn: str) -> list[str]:
    """Whatever happened, PostgreSQL and Redis are running again afterwards; the problems left, if any."""
    problems = []
    if not start_redis():
        problems.append("Redis does not answer on 127.0.0.1:6379")
    if not start_pg(dsn):
        problems.append("PostgreSQL does not answer on 127.0.0.1:5432")
    return problems


# ------------------------------------------------------------------------------------------ private servers


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _private_pg_ctl(action: str) -> int:
    data, port = _private["pg_data"], _private["pg_port"]
    argv = [*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", data, "-w", "-l", f"{data}/server.log"]
    if action == "start":
        argv += ["-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"]
    else:
        argv += ["-m", "fast", action]
    return subprocess.run(
        argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60
    ).returncode


def start_private_redis() -> str:
    """A redis-server of the suite's own on a free port (what faults 3 restarts); its URL without a db."""
    global REDIS_PORT, REDIS_START
    workdir = tempfile.mkdtemp(prefix="lineup-faults-redis-")
    _private["redis_dir"] = workdir
    REDIS_PORT = free_port()
    REDIS_START = [
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "--port",
        str(REDIS_PORT),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
        "--logfile",
        f"{workdir}/redis.log",
    ]
    if not start_redis():
        raise RuntimeError(f"the suite's own redis-server did not start on port {REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}"


def start_private_pg() -> str:
    """A PostgreSQL cluster of the suite's own (initdb, stock configuration, a free port): its DSN base."""
    data = tempfile.mkdtemp(prefix="lineup-faults-pg-")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    subprocess.run(
        [
            *_as_postgres(),
            str(PG_BIN / "initdb"),
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    _private.update(pg_data=data, pg_port=free_port())
    dsn = f"postgres://postgres@127.0.0.1:{_private['pg_port']}"
    if not start_pg(f"{dsn}/postgres"):
        raise RuntimeError("the suite's own PostgreSQL cluster did not start")
    return dsn


def stop_private() -> None:
    """Stop the suite's own servers (if it started any) and remove their files."""
    if "redis_dir" in _private:
        stop_redis()
        shutil.rmtree(_private.pop("redis_dir"), ignore_errors=True)
    if "pg_data" in _private:
        _private_pg_ctl("stop")
        shutil.rmtree(_private.pop("pg_data"), ignore_errors=True)
